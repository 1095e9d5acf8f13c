// tslab publishes every stdout write and every kernel status on its iopub socket without waiting for
// the previous send; zeromq 6 throws EBUSY ("Socket is busy writing; only one send operation may be
// in progress at any time") when one is still in flight, and the kernel dies. A long cram printing
// progress on a loaded CPU hits this. Inside tslab, queue the sends of zeromq Publisher sockets (the
// iopub socket) one after another; everywhere else, do nothing.
export function serializeTslabSends(): boolean {
  const inTslab = Object.keys(require.cache).some((k) => /[\\/]tslab[\\/]dist[\\/]/.test(k));
  if (!inTslab) return false;
  let zmq: any;
  try {
    // The zeromq that tslab itself loaded (same path, same module instance).
    const tslabMain = Object.keys(require.cache).find((k) => /[\\/]tslab[\\/]dist[\\/]jupyter\.js$/.test(k));
    zmq = require(require.resolve('zeromq', tslabMain ? { paths: [tslabMain] } : undefined));
  } catch {
    return false;
  }
  const proto = zmq?.Publisher?.prototype;
  if (!proto || proto.__cramlabSerialized) return Boolean(proto?.__cramlabSerialized);
  const send = Object.getPrototypeOf(proto).send as (this: unknown, msg: unknown) => Promise<void>;
  if (typeof send !== 'function') return false;
  let queue: Promise<void> = Promise.resolve();
  // The native send is a read-only inherited property: define an own one rather than assign.
  Object.defineProperty(proto, 'send', {
    configurable: true,
    writable: true,
    value: function (this: unknown, msg: unknown): Promise<void> {
      // A failed send loses that one message, never the kernel.
      queue = queue.then(() => send.call(this, msg)).catch(() => undefined);
      return queue;
    },
  });
  proto.__cramlabSerialized = true;
  return true;
}
