"""Decode cramlab [mem] vectors in PyTorch: the same greedy decoding as `cramlab decode`.

    npx cramlab export story.cram --to npy        # story.npy (float32 [K, d]) + story.json
    /usr/bin/python3 examples/decode_with_torch.py story.npy MODEL_DIR

inputs_embeds = cat([mem, embed(first_id)]); then N-1 greedy tokens. With Hugging Face transformers
installed it loads MODEL_DIR with AutoModelForCausalLM (any architecture); otherwise, for a Llama, the
repository's dependency-free torch reference ../shared/bench/llama_ref.py (or $CRAMLAB_LLAMA_REF).
Prints the decoded ids, whether they equal the ids cramlab stored, and the text when a tokenizer loads.
"""
import json
import os
import sys

import numpy as np
import torch


def load(model_dir):
    try:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        return AutoModelForCausalLM.from_pretrained(model_dir), AutoTokenizer.from_pretrained(model_dir)
    except ImportError:
        ref = os.environ.get("CRAMLAB_LLAMA_REF", os.path.join(os.path.dirname(__file__), "..", "..", "shared", "bench"))
        sys.path.insert(0, os.path.dirname(ref) if ref.endswith(".py") else ref)
        import llama_ref

        return llama_ref.load_model(model_dir), None


def main():
    npy, model_dir = sys.argv[1], sys.argv[2]
    mem = torch.from_numpy(np.load(npy))  # [K, d] float32
    meta = json.load(open(os.path.splitext(npy)[0] + ".json"))  # first_id, tokens, ids
    model, tokenizer = load(model_dir)
    embed = model.get_input_embeddings() if hasattr(model, "get_input_embeddings") else model.embed
    ids = [meta["first_id"]]
    with torch.no_grad():
        embeds = torch.cat([mem, embed(torch.tensor([meta["first_id"]]))])[None]  # [1, K+1, d]
        for _ in range(meta["tokens"] - 1):  # greedy, no stop at EOS: the stored count is the length
            out = model(inputs_embeds=embeds)
            logits = out.logits if hasattr(out, "logits") else out
            nxt = int(logits[0, -1].argmax())
            ids.append(nxt)
            embeds = torch.cat([embeds, embed(torch.tensor([nxt]))[None]], dim=1)
    print("ids", ids)
    if meta.get("ids") is not None:
        print("matches cramlab's ids:", ids == meta["ids"])
    if tokenizer is not None:
        print(tokenizer.decode(ids))
    sys.exit(0 if meta.get("ids") in (None, ids) else 1)


if __name__ == "__main__":
    main()
