"""Execute one notebook headless with nbclient and record, per cell, whether the kernel
reported an error (tslab prints compile errors to stderr and replies status=error, which
leaves no 'error' output behind). Used by scripts/run-notebooks.ts.

usage: python3 nbrun.py IN.ipynb OUT.ipynb [KERNEL] [TIMEOUT_S]
"""
import os
import sys
import time

import nbformat
from nbclient import NotebookClient


def main():
    src, dst = sys.argv[1], sys.argv[2]
    kernel = sys.argv[3] if len(sys.argv) > 3 else 'tslab'
    timeout = int(sys.argv[4]) if len(sys.argv) > 4 else 600
    nb = nbformat.read(src, as_version=4)

    def on_error(cell, cell_index, execute_reply):
        cell.metadata['cramlab_error'] = execute_reply['content'].get('ename', 'error') or 'error'

    started = {}

    def on_start(cell, cell_index):
        started[cell_index] = time.time()

    def on_done(cell, cell_index, execute_reply):
        cell.metadata['cramlab_seconds'] = round(time.time() - started.get(cell_index, time.time()), 2)

    client = NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=timeout,
        allow_errors=True,  # keep going: every failing cell gets reported, not just the first
        resources={'metadata': {'path': os.path.dirname(os.path.abspath(src))}},
        on_cell_error=on_error,
        on_cell_start=on_start,
        on_cell_executed=on_done,
    )
    client.execute()
    nbformat.write(nb, dst)


if __name__ == '__main__':
    main()
