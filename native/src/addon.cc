// N-API surface of the native engine. Every argument is checked here and a bad one throws a JS Error
// with a message; the C code below trusts its inputs. Architecture-neutral: models are model.h's.
//   createModel(modelType, config, tensors) → handle (config: numbers/booleans by key, as the
//                                             architecture's *_create reads them; tensors by HF name,
//                                             copied into native memory once)
//   createLlama(config, invFreq, tensors)   = createModel('llama', config, tensors + {'rope.inv_freq'})
//   dispose(handle)                         frees now (else on GC)
//   forwardLogits(handle, embeds, B, T)     → Float32Array [B, T, V]
//   backwardEmbeds(handle, embeds, dlogits, B, T) → Float32Array [B, T, d_in]
//   cramSteps(handle, state, S)             → steps run (state's typed arrays updated in place)
//   generate(handle, prefix, P, maxNew, eos)→ Int32Array of greedy tokens (KV cache / recurrent state)
//   modelInfo(handle) → {type, dIn, dOut, vocab, maxPos, weightBytes, decodeBytes, dtype};  readBandwidth(MB) → GB/s;  info() → {blas, threads, architectures};  setThreads(n)
//   embeddingStats(handle) → {mean, std} of the input embedding (float64);  embeddingMeanRow(handle) → its mean row
//   embedRows(handle, ids) → Float32Array [n, d_in]
//   widenHalf(bits: Uint16Array, 'BF16' | 'F16') → Float32Array
//   selectiveScan(B, T, I, N, delta, A, Bm, Cm, x, D, dy?) → {y} (+ {ddelta, dx, dB, dC} with dy): Mamba's scan
//                                             kernel alone (kernels.h selective_scan), for tests and the bench
#include <napi.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#include <cerrno>
#include <climits>
#include <cstring>
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <string>
#include <vector>
extern "C" {
#include "cram.h"
#include "kernels.h"
#include "model.h"
}

enum { MAX_GROUPS = 16 };
struct Handle {
  Model *m = nullptr;
  void *a = nullptr;               // forwardLogits, and group 0 of cramSteps
  void *groups[MAX_GROUPS] = {};  // one activation set per thread of cramSteps (groups[0] = a)
  void free() {
    if (m) {
      for (int g = 1; g < MAX_GROUPS; g++)
        if (groups[g]) m->ops->acts_free(groups[g]), groups[g] = nullptr;
      if (a) m->ops->acts_free(a);
      model_free(m);
    }
    a = nullptr;
    m = nullptr;
  }
  ~Handle() { free(); }
};

static Napi::Error err(Napi::Env env, const std::string &msg) { return Napi::Error::New(env, "native engine: " + msg); }

static Handle *handleOf(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsExternal()) throw err(env, "first argument must be a model handle from createModel");
  Handle *h = info[0].As<Napi::External<Handle>>().Data();
  if (!h || !h->m) throw err(env, "the model handle was disposed");
  return h;
}

static int intArg(Napi::Env env, Napi::Value v, const char *name, long lo, long hi) {
  if (!v.IsNumber()) throw err(env, std::string(name) + " must be a number");
  double x = v.As<Napi::Number>().DoubleValue();
  if (!(x == std::floor(x)) || x < lo || x > hi) {
    char got[64];
    snprintf(got, sizeof got, "%.17g", x);
    throw err(env, std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + got);
  }
  return (int)x;
}

template <typename T, napi_typedarray_type kind>
static T *typed(Napi::Env env, Napi::Value v, const std::string &name, size_t len) {
  if (!v.IsTypedArray() || v.As<Napi::TypedArray>().TypedArrayType() != kind)
    throw err(env, name + (kind == napi_float32_array ? " must be a Float32Array" : " must be an Int32Array"));
  auto a = v.As<Napi::TypedArrayOf<T>>();
  if (len != (size_t)-1 && a.ElementLength() != len) throw err(env, name + " has " + std::to_string(a.ElementLength()) + " values, expected " + std::to_string(len));
  return a.Data();
}
#define F32(env, v, name, len) typed<float, napi_float32_array>(env, v, name, len)
#define I32(env, v, name, len) typed<int32_t, napi_int32_array>(env, v, name, len)

static void checkFinite(Napi::Env env, const float *x, size_t n, const std::string &name) {
  for (size_t i = 0; i < n; i++)
    if (!std::isfinite(x[i])) throw err(env, name + " contains NaN or Infinity (at index " + std::to_string(i) + ")");
}

static const char *dtypeName(int dt) { return dt == DT_BF16 ? "BF16" : dt == DT_F16 ? "F16" : "F32"; }

static int dtypeOf(Napi::Env env, const std::string &s, const std::string &name) {
  if (s == "F32") return DT_F32;
  if (s == "BF16") return DT_BF16;
  if (s == "F16") return DT_F16;
  throw err(env, "tensor '" + name + "': dtype " + s + " cannot be read natively (F32, BF16, F16)");
}

// n bytes of fd at pos into dst: -1, or the file offset where it came up short (shrunk since its header was read)
static long readAtMost(int fd, void *dst, size_t n, size_t pos) {
  char *p = (char *)dst;
  for (size_t done = 0; done < n;) {
    const ssize_t r = pread(fd, p + done, std::min(n - done, (size_t)1 << 30), (off_t)(pos + done));
    if (r <= 0) return (long)(pos + done);
    done += (size_t)r;
  }
  return -1;
}

// A slot whose bytes come from a file: where they go, read with all the others in one parallel pass.
struct Pending {
  const WeightSlot *slot;
  std::string name, file, label;
  int fd, dt;
  size_t offset, bytes;
  void *dst;
  std::vector<uint16_t> half; // an fp32 slot's bf16/f16 bytes, widened after the read
  long ended = LONG_MAX, bad = LONG_MAX; // the first short read (file offset), the first NaN/Inf (index)
};

// Where a slot's values land: the matrix's own storage (allocated as stored) or the fp32 slot.
static void *slotDst(Napi::Env env, const WeightSlot &s, int dt, std::vector<uint16_t> &half) {
  if (s.mat) {
    s.mat->p = weights_alloc((size_t)s.n * dtype_bytes(dt));
    s.mat->dtype = dt;
    if (!s.mat->p) throw err(env, "out of memory loading tensor '" + std::string(s.name) + "'");
    return s.mat->p;
  }
  if (dt == DT_F32) return s.dst;
  half.resize((size_t)s.n);
  return half.data();
}

static void throwNonFinite(Napi::Env env, const std::string &label, const std::string &name, void *dst, int dt, long bad) {
  float x;
  mat_row(&x, (Mat){(char *)dst + bad * dtype_bytes(dt), dt}, 0, 1);
  const char *what = std::isnan(x) ? "NaN" : x > 0 ? "Infinity" : "-Infinity";
  throw Napi::Error::New(env, label + ": tensor '" + name + "' holds " + what + " at flat index " + std::to_string(bad) + " (weights must be finite)");
}

// One weight slot from its JS value: a Float32Array (copied now, so one lazy getter's array is in flight
// at a time), or {file, offset, size, dtype, label}: queued in `pending`, its storage allocated as stored
// (bf16/f16: 2 bytes a weight) when the slot is a matrix; an fp32 slot gets them widened after the read.
static void fillSlot(Napi::Env env, const WeightSlot &s, Napi::Value v, std::vector<Pending> &pending, std::vector<std::pair<std::string, int>> &fds) {
  const std::string name = s.name;
  if (v.IsTypedArray()) {
    const float *src = F32(env, v, "tensor '" + name + "'", (size_t)s.n);
    std::vector<uint16_t> none;
    void *dst = slotDst(env, s, DT_F32, none);
    std::copy(src, src + s.n, (float *)dst);
    const long bad = mat_first_nonfinite((Mat){dst, DT_F32}, (long)s.n);
    if (bad >= 0) throwNonFinite(env, "checkpoint", name, dst, DT_F32, bad);
    return;
  }
  if (!v.IsObject() || !v.As<Napi::Object>().Get("file").IsString()) throw err(env, "tensor '" + name + "' must be a Float32Array or a file location");
  Napi::Object o = v.As<Napi::Object>();
  Pending p;
  p.slot = &s;
  p.name = name;
  p.file = o.Get("file").As<Napi::String>().Utf8Value();
  p.dt = dtypeOf(env, o.Get("dtype").ToString().Utf8Value(), name);
  p.offset = (size_t)o.Get("offset").ToNumber().DoubleValue();
  p.bytes = (size_t)s.n * dtype_bytes(p.dt);
  p.label = o.Get("label").IsString() ? o.Get("label").As<Napi::String>().Utf8Value() : "checkpoint";
  const double size = o.Get("size").ToNumber().DoubleValue();
  auto it = std::find_if(fds.begin(), fds.end(), [&](const std::pair<std::string, int> &f) { return f.first == p.file; });
  if (it == fds.end()) {
    const int fd = open(p.file.c_str(), O_RDONLY);
    if (fd < 0) throw err(env, p.file + ": cannot open (" + std::string(strerror(errno)) + ")");
    fds.emplace_back(p.file, fd);
    struct stat st;
    if (fstat(fd, &st) || (double)st.st_size != size)
      throw err(env, p.file + ": file is " + std::to_string((long long)st.st_size) + " bytes, " + std::to_string((long long)size) + " when its header was read (changed since?)");
    it = fds.end() - 1;
  }
  p.fd = it->second;
  pending.push_back(std::move(p));
  Pending &q = pending.back();
  q.dst = slotDst(env, s, q.dt, q.half);
}

// Every queued slot's bytes in 1 MB pieces over the threads, each piece checked for NaN/Inf while it is
// still in the L2 cache (one pass over memory). Both cores share the page faults of the fresh storage:
// in a VM, where first touching memory also makes the host back it, one thread filled 2.5 GB in 3.7 s,
// two in 1.8 s. Problems are reported after the pass, the first slot's first.
static void readPending(Napi::Env env, std::vector<Pending> &pending) {
  const size_t piece = (size_t)1 << 20;
  std::vector<std::pair<int, size_t>> pieces; // (pending index, byte offset in its tensor)
  for (size_t i = 0; i < pending.size(); i++)
    for (size_t done = 0; done < pending[i].bytes; done += piece) pieces.emplace_back((int)i, done);
  const long np = (long)pieces.size();
#pragma omp parallel for schedule(dynamic, 4) if (np >= 8) // one region a load: its cost is nothing beside 8 MB
  for (long k = 0; k < np; k++) {
    Pending &p = pending[pieces[k].first];
    const size_t done = pieces[k].second, m = std::min(piece, p.bytes - done), w = (size_t)dtype_bytes(p.dt);
    const long e = readAtMost(p.fd, (char *)p.dst + done, m, p.offset + done);
    long b = -1;
    if (e < 0) b = mat_first_nonfinite((Mat){(char *)p.dst + done, p.dt}, (long)(m / w));
    if (e >= 0 || b >= 0) {
#pragma omp critical(cramlab_load)
      {
        if (e >= 0) p.ended = std::min(p.ended, e);
        if (b >= 0) p.bad = std::min(p.bad, (long)(done / w) + b);
      }
    }
  }
  for (Pending &p : pending) {
    if (p.ended != LONG_MAX) throw err(env, p.file + ": file ended at byte " + std::to_string(p.ended) + " while reading (changed since its header was read?)");
    if (p.bad != LONG_MAX) throwNonFinite(env, p.label, p.name, p.dst, p.dt, p.bad);
    if (!p.slot->mat && p.dt != DT_F32) widen(p.slot->dst, p.half.data(), p.dt, (long)p.slot->n);
  }
}

// The model of `type` from a JS config object (its number and boolean properties) and tensors by name;
// `extra` (may be empty) supplies tensors not in the object (createLlama's invFreq).
static Napi::Value Create(Napi::Env env, const std::string &type, Napi::Object cfg, Napi::Object t, const std::string &extraName, Napi::Value extra) {
  std::vector<std::string> keys;
  std::vector<double> vals;
  Napi::Array names = cfg.GetPropertyNames();
  for (uint32_t i = 0; i < names.Length(); i++) {
    std::string k = names.Get(i).ToString().Utf8Value();
    Napi::Value v = cfg.Get(k);
    if (v.IsNumber()) keys.push_back(k), vals.push_back(v.As<Napi::Number>().DoubleValue());
    else if (v.IsBoolean()) keys.push_back(k), vals.push_back(v.As<Napi::Boolean>().Value() ? 1.0 : 0.0);
  }
  std::vector<const char *> kp;
  for (auto &k : keys) kp.push_back(k.c_str());
  ModelConfig mc{(int)keys.size(), kp.data(), vals.data()};
  char msg[512] = "";
  Handle *h = new Handle();
  h->m = model_create(type.c_str(), &mc, msg, sizeof msg);
  if (!h->m) {
    delete h;
    throw err(env, msg);
  }
  h->a = h->m->ops->acts_new(h->m);
  if (!h->a) {
    delete h;
    throw err(env, "out of memory allocating the model");
  }
  std::vector<Pending> pending;
  std::vector<std::pair<std::string, int>> fds; // each file opened once
  try {
    for (int i = 0; i < h->m->n_slots; i++) {
      // One scope per tensor: a lazy getter's fresh array is garbage once copied (one tensor in flight).
      Napi::HandleScope scope(env);
      const WeightSlot &s = h->m->slots[i];
      const std::string name = s.name;
      Napi::Value v = name == extraName ? extra : t.Has(name) ? t.Get(name) : env.Undefined();
      if (v.IsUndefined()) throw err(env, "tensor '" + name + "' is missing");
      fillSlot(env, s, v, pending, fds);
    }
    readPending(env, pending);
  } catch (...) {
    for (auto &f : fds) close(f.second);
    delete h;
    throw;
  }
  for (auto &f : fds) close(f.second);
  h->m->ops->prepare(h->m);
  return Napi::External<Handle>::New(env, h, [](Napi::Env, Handle *p) { delete p; });
}

static Napi::Value CreateModel(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsString() || !info[1].IsObject() || !info[2].IsObject()) throw err(env, "createModel(modelType, config, tensors) needs a string and 2 objects");
  return Create(env, info[0].As<Napi::String>().Utf8Value(), info[1].As<Napi::Object>(), info[2].As<Napi::Object>(), "", env.Undefined());
}

static Napi::Value CreateLlama(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsObject() || !info[2].IsObject()) throw err(env, "createLlama(config, invFreq, tensors) needs 3 arguments");
  return Create(env, "llama", info[0].As<Napi::Object>(), info[2].As<Napi::Object>(), "rope.inv_freq", info[1]);
}

static Napi::Value Dispose(const Napi::CallbackInfo &info) {
  if (info.Length() >= 1 && info[0].IsExternal()) {
    Handle *h = info[0].As<Napi::External<Handle>>().Data();
    if (h) h->free();
  }
  return info.Env().Undefined();
}

static Napi::Value ForwardLogits(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Handle *h = handleOf(info);
  const Model &c = *h->m;
  if (info.Length() < 4) throw err(env, "forwardLogits(handle, embeds, B, T) needs 4 arguments");
  const int B = intArg(env, info[2], "B", 1, 1 << 20);
  const int T = intArg(env, info[3], "T", 1, c.max_pos);
  const float *x = F32(env, info[1], "embeds", (size_t)B * T * c.d_in);
  checkFinite(env, x, (size_t)B * T * c.d_in, "embeds");
  const float *hidden = c.ops->forward(h->m, h->a, x, B, T);
  if (!hidden) throw err(env, "out of memory");
  auto out = Napi::Float32Array::New(env, (size_t)B * T * c.vocab);
  matmul(out.Data(), hidden, c.lm_head, NULL, B * T, c.d_out, c.vocab);
  return out;
}

// dL/dembeds for a given dL/dlogits: the forward again (its activations), dlogits·lm_head into the final
// hidden states, then the backward to the input. What tf.grad through NativeModel.forward() calls.
static Napi::Value BackwardEmbeds(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Handle *h = handleOf(info);
  const Model &c = *h->m;
  if (info.Length() < 5) throw err(env, "backwardEmbeds(handle, embeds, dlogits, B, T) needs 5 arguments");
  const int B = intArg(env, info[3], "B", 1, 1 << 20);
  const int T = intArg(env, info[4], "T", 1, c.max_pos);
  const size_t M = (size_t)B * T;
  const float *x = F32(env, info[1], "embeds", M * c.d_in);
  const float *dy = F32(env, info[2], "dlogits", M * c.vocab);
  checkFinite(env, x, M * c.d_in, "embeds");
  checkFinite(env, dy, M * c.vocab, "dlogits");
  if (!c.ops->forward(h->m, h->a, x, B, T)) throw err(env, "out of memory");
  std::vector<float> dhidden(M * c.d_out, 0.f);
  matmul_backward(dhidden.data(), dy, c.lm_head, (int)M, c.d_out, c.vocab);
  auto out = Napi::Float32Array::New(env, M * c.d_in);
  c.ops->backward(h->m, h->a, dhidden.data(), out.Data());
  return out;
}

static Napi::Value CramSteps(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Handle *h = handleOf(info);
  const Model &c = *h->m;
  if (info.Length() < 3 || !info[1].IsObject()) throw err(env, "cramSteps(handle, state, S) needs 3 arguments");
  Napi::Object o = info[1].As<Napi::Object>();
  const int S = intArg(env, info[2], "S", 1, 1 << 24);
  CramState s{};
  s.K = intArg(env, o.Get("K"), "K", 1, c.max_pos);
  const int32_t *lengths = I32(env, o.Get("lengths"), "lengths", (size_t)-1);
  s.B = (int)o.Get("lengths").As<Napi::Int32Array>().ElementLength();
  if (s.B < 1) throw err(env, "no texts");
  const int32_t *offsets = I32(env, o.Get("offsets"), "offsets", s.B);
  long total = 0;
  for (int b = 0; b < s.B; b++) {
    if (lengths[b] < 2) throw err(env, "text " + std::to_string(b) + " has " + std::to_string(lengths[b]) + " tokens; cramming needs at least 2");
    if (s.K + lengths[b] > c.max_pos) throw err(env, "text " + std::to_string(b) + ": " + std::to_string(lengths[b]) + " tokens + K mem exceed the context of " + std::to_string(c.max_pos));
    if (offsets[b] < 0) throw err(env, "offsets must be ≥ 0");
    if ((long)offsets[b] + lengths[b] > total) total = (long)offsets[b] + lengths[b];
  }
  Napi::Value idsV = o.Get("ids");
  if (!idsV.IsTypedArray() || idsV.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) throw err(env, "ids must be an Int32Array");
  const size_t nIds = idsV.As<Napi::Int32Array>().ElementLength();
  if ((size_t)total > nIds) throw err(env, "ids has " + std::to_string(nIds) + " values; offsets + lengths need " + std::to_string(total));
  const int32_t *ids = I32(env, idsV, "ids", nIds);
  for (size_t i = 0; i < nIds; i++)
    if (ids[i] < 0 || ids[i] >= c.vocab) throw err(env, "token id " + std::to_string(ids[i]) + " is outside the vocabulary [0, " + std::to_string(c.vocab) + ")");
  const size_t B = s.B, Kd = (size_t)s.K * c.d_in;
  s.ids = ids, s.offsets = offsets, s.lengths = lengths;
  s.mem = F32(env, o.Get("mem"), "mem", B * Kd);
  s.m = F32(env, o.Get("m"), "m", B * Kd);
  s.v = F32(env, o.Get("v"), "v", B * Kd);
  s.best_mem = F32(env, o.Get("bestMem"), "bestMem", B * Kd);
  s.best_correct = I32(env, o.Get("bestCorrect"), "bestCorrect", B);
  s.best_step = I32(env, o.Get("bestStep"), "bestStep", B);
  s.counter = I32(env, o.Get("counter"), "counter", B);
  s.done = I32(env, o.Get("done"), "done", B);
  s.done_at = I32(env, o.Get("doneAt"), "doneAt", B);
  s.status = I32(env, o.Get("status"), "status", B);
  s.best_loss = F32(env, o.Get("bestLoss"), "bestLoss", B);
  s.min_loss = F32(env, o.Get("minLoss"), "minLoss", B);
  s.loss_out = F32(env, o.Get("lossOut"), "lossOut", (size_t)S * B);
  s.correct_out = I32(env, o.Get("correctOut"), "correctOut", (size_t)S * B);
  const bool gradOut = o.Has("gradOut") && !o.Get("gradOut").IsUndefined(); // dmem, or dz with a rank
  for (size_t b = 0; b < B; b++)
    if (!s.done[b]) checkFinite(env, s.mem + b * Kd, Kd, "mem of text " + std::to_string(b));
  auto num = [&](const char *k) {
    Napi::Value v = o.Get(k);
    if (!v.IsNumber() || !std::isfinite(v.As<Napi::Number>().DoubleValue()) || v.As<Napi::Number>().DoubleValue() < 0) throw err(env, std::string(k) + " must be a finite number ≥ 0");
    return v.As<Napi::Number>().DoubleValue();
  };
  s.lr = (float)num("lr"), s.beta1 = (float)num("beta1"), s.beta2 = (float)num("beta2"), s.eps = (float)num("eps"), s.weight_decay = (float)num("weightDecay");
  s.max_steps = intArg(env, o.Get("maxSteps"), "maxSteps", 1, 1 << 30);
  s.patience = intArg(env, o.Get("patience"), "patience", 1, 1 << 30);
  s.it0 = intArg(env, o.Get("it0"), "it0", 0, 1 << 30);
  // schedule.ts's options, optional (absent: off)
  auto opt = [&](const char *k, double off) { return o.Has(k) && !o.Get(k).IsUndefined() ? num(k) : off; };
  s.lead_weight = (float)opt("leadingWeight", 1), s.min_lr = (float)opt("minLr", 0), s.clip_norm = (float)opt("clipGradNorm", 0);
  s.lead_count = (int)opt("leadingCount", 0), s.lr_cosine = o.Has("lrSchedule") && o.Get("lrSchedule").ToString().Utf8Value() == "cosine";
  s.margin = o.Has("margin") && !o.Get("margin").IsUndefined() ? (float)num("margin") : 0.f;
  // low-rank mem (lowrank.ts), optional: z, W, bias and their AdamW moments; mem, bestMem get the expansion
  s.rank = (int)opt("rank", 0);
  if (s.rank) {
    if (s.rank > c.d_in) throw err(env, "rank " + std::to_string(s.rank) + " exceeds the mem width " + std::to_string(c.d_in));
    s.shared = o.Has("rankShared") && o.Get("rankShared").ToBoolean().Value();
    s.train_wb = o.Has("rankTrain") && o.Get("rankTrain").ToBoolean().Value();
    const size_t Kr = (size_t)s.K * s.rank, nW = s.shared ? 1 : B, dr = (size_t)c.d_in * s.rank;
    s.z = F32(env, o.Get("z"), "z", B * Kr), s.zm = F32(env, o.Get("zm"), "zm", B * Kr), s.zv = F32(env, o.Get("zv"), "zv", B * Kr);
    s.best_z = F32(env, o.Get("bestZ"), "bestZ", B * Kr);
    s.W = F32(env, o.Get("W"), "W", nW * dr), s.bias = F32(env, o.Get("bias"), "bias", nW * c.d_in);
    checkFinite(env, s.z, B * Kr, "z");
    checkFinite(env, s.W, nW * dr, "W");
    checkFinite(env, s.bias, nW * c.d_in, "bias");
    if (s.train_wb) {
      s.Wm = F32(env, o.Get("Wm"), "Wm", nW * dr), s.Wv = F32(env, o.Get("Wv"), "Wv", nW * dr);
      s.bm = F32(env, o.Get("bm"), "bm", nW * c.d_in), s.bv = F32(env, o.Get("bv"), "bv", nW * c.d_in);
      if (o.Has("gradWOut") && !o.Get("gradWOut").IsUndefined()) s.grad_w_out = F32(env, o.Get("gradWOut"), "gradWOut", nW * dr);
      if (o.Has("gradBiasOut") && !o.Get("gradBiasOut").IsUndefined()) s.grad_bias_out = F32(env, o.Get("gradBiasOut"), "gradBiasOut", nW * c.d_in);
    }
    if (gradOut) s.grad_out = F32(env, o.Get("gradOut"), "gradOut", B * Kr);
  } else if (gradOut) {
    s.grad_out = F32(env, o.Get("gradOut"), "gradOut", B * Kd);
  }
  const int G = std::min(std::max(num_threads(), 1), (int)MAX_GROUPS);
  h->groups[0] = h->a;
  for (int g = 1; g < G; g++)
    if (!h->groups[g] && !(h->groups[g] = c.ops->acts_new(h->m))) throw err(env, "out of memory");
  const int ran = cram_steps(h->m, h->groups, G, &s, S);
  if (ran < 0) throw err(env, "out of memory");
  return Napi::Number::New(env, ran);
}

static Napi::Value Generate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Handle *h = handleOf(info);
  const Model &c = *h->m;
  if (info.Length() < 5) throw err(env, "generate(handle, prefix, P, maxNew, eos) needs 5 arguments");
  const int P = intArg(env, info[2], "P", 1, c.max_pos);
  const int maxNew = intArg(env, info[3], "maxNew", 0, c.max_pos - P);
  const float *x = F32(env, info[1], "prefix", (size_t)P * c.d_in);
  checkFinite(env, x, (size_t)P * c.d_in, "prefix");
  Napi::Value eosV = info[4];
  const int32_t *eos = I32(env, eosV, "eos", (size_t)-1);
  const size_t nEos = eosV.As<Napi::Int32Array>().ElementLength();
  std::vector<int32_t> out;
  if (maxNew > 0) {
    void *st = c.ops->state_new(h->m, P + maxNew);
    std::vector<float> logits(c.vocab), hidden(c.d_out), next(c.d_in);
    if (!st) throw err(env, "out of memory");
    auto step = [&](const float *xs, int n) {
      if (!c.ops->decode(h->m, st, xs, n, hidden.data())) return 0;
      matmul(logits.data(), hidden.data(), c.lm_head, NULL, 1, c.d_out, c.vocab);
      return 1;
    };
    int ok = step(x, P);
    while (ok && (int)out.size() < maxNew) {
      int best = 0;
      for (int i = 1; i < c.vocab; i++)
        if (logits[i] > logits[best]) best = i;
      out.push_back(best);
      bool stop = false;
      for (size_t e = 0; e < nEos; e++) stop = stop || eos[e] == best;
      if (stop || (int)out.size() >= maxNew) break;
      mat_row(next.data(), c.embed_tokens, best, c.d_in);
      ok = step(next.data(), 1);
    }
    c.ops->state_free(st);
    if (!ok) throw err(env, "out of memory");
  }
  auto arr = Napi::Int32Array::New(env, out.size());
  std::copy(out.begin(), out.end(), arr.Data());
  return arr;
}

// mean and unbiased std of the input embedding matrix, in float64 over the native copy (std(E): the mem init)
static Napi::Value EmbeddingStats(const Napi::CallbackInfo &info) {
  Handle *h = handleOf(info);
  double mean, std;
  mat_stats(h->m->embed_tokens, (long)h->m->vocab * h->m->d_in, &mean, &std);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("mean", mean);
  o.Set("std", std);
  return o;
}

// the input embedding matrix's mean row → Float32Array [d_in] (float64 sums over the native copy)
static Napi::Value EmbeddingMeanRow(const Napi::CallbackInfo &info) {
  Handle *h = handleOf(info);
  const Model &c = *h->m;
  auto out = Napi::Float32Array::New(info.Env(), c.d_in);
  if (mat_col_mean(c.embed_tokens, c.vocab, c.d_in, out.Data()) != 0) throw err(info.Env(), "out of memory for the embedding's mean row");
  return out;
}

// rows ids[n] of the input embedding matrix → Float32Array [n, d_in] (a token lookup, no tfjs copy of E)
static Napi::Value EmbedRows(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Handle *h = handleOf(info);
  const Model &c = *h->m;
  if (info.Length() < 2) throw err(env, "embedRows(handle, ids) needs 2 arguments");
  Napi::Value idsV = info[1];
  if (!idsV.IsTypedArray() || idsV.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) throw err(env, "ids must be an Int32Array");
  const size_t n = idsV.As<Napi::Int32Array>().ElementLength();
  const int32_t *ids = I32(env, idsV, "ids", n);
  for (size_t i = 0; i < n; i++)
    if (ids[i] < 0 || ids[i] >= c.vocab) throw err(env, "token id " + std::to_string(ids[i]) + " is outside the vocabulary [0, " + std::to_string(c.vocab) + ")");
  auto out = Napi::Float32Array::New(env, n * c.d_in);
  for (size_t i = 0; i < n; i++) mat_row(out.Data() + i * c.d_in, c.embed_tokens, ids[i], c.d_in);
  return out;
}

// bf16 / f16 bits → Float32Array (the tfjs engine's reader: vectorised here, not a JS loop per value)
static Napi::Value WidenHalf(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 2 || !info[0].IsTypedArray() || info[0].As<Napi::TypedArray>().TypedArrayType() != napi_uint16_array || !info[1].IsString())
    throw err(env, "widenHalf(bits: Uint16Array, dtype: 'BF16' | 'F16') needs 2 arguments");
  auto bits = info[0].As<Napi::Uint16Array>();
  const int dt = dtypeOf(env, info[1].As<Napi::String>().Utf8Value(), "widenHalf");
  auto out = Napi::Float32Array::New(env, bits.ElementLength());
  widen(out.Data(), bits.Data(), dt, (long)bits.ElementLength());
  return out;
}

static Napi::Value Info(const Napi::CallbackInfo &info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("blas", blas_name());
  o.Set("threads", num_threads());
  o.Set("architectures", model_types());
  return o;
}

static Napi::Value ModelInfo(const Napi::CallbackInfo &info) {
  Handle *h = handleOf(info);
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("type", h->m->type);
  o.Set("dIn", h->m->d_in);
  o.Set("dOut", h->m->d_out);
  o.Set("vocab", h->m->vocab);
  o.Set("maxPos", h->m->max_pos);
  // bytes of weights as stored, and the dtypes of the matrices ("BF16", or "F32+BF16" when mixed)
  double bytes = 0;
  std::string dtypes;
  for (int i = 0; i < h->m->n_slots; i++) {
    const WeightSlot &s = h->m->slots[i];
    const int dt = s.mat ? s.mat->dtype : DT_F32;
    bytes += (double)s.n * dtype_bytes(dt);
    if (s.mat && dtypes.find(dtypeName(dt)) == std::string::npos) dtypes += std::string(dtypes.empty() ? "" : "+") + dtypeName(dt);
  }
  o.Set("weightBytes", bytes);
  // what one decode step reads: every matrix but an untied input embedding (one row of it)
  const Mat &E = h->m->embed_tokens;
  const double embed = E.p && E.p != h->m->lm_head.p ? (double)h->m->vocab * h->m->d_in * dtype_bytes(E.dtype) : 0.0;
  o.Set("decodeBytes", bytes - embed);
  o.Set("dtype", dtypes);
  return o;
}

static Napi::Value ReadBandwidth(const Napi::CallbackInfo &info) {
  const int mb = intArg(info.Env(), info[0], "megabytes", 1, 1 << 16);
  return Napi::Number::New(info.Env(), read_bandwidth_gbs((long)mb << 20));
}

static Napi::Value SetThreads(const Napi::CallbackInfo &info) {
  set_threads(intArg(info.Env(), info[0], "threads", 1, 1024));
  return info.Env().Undefined();
}

// Mamba's selective scan kernel on its own: delta, x, dy [B,T,I]; A [I,N]; Bm, Cm [B,T,N]; D [I].
static Napi::Value SelectiveScan(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 10) throw err(env, "selectiveScan(B, T, I, N, delta, A, Bm, Cm, x, D, dy?) needs at least 10 arguments");
  const int B = intArg(env, info[0], "B", 1, 1 << 16), T = intArg(env, info[1], "T", 1, 1 << 20);
  const int nI = intArg(env, info[2], "I", 1, 1 << 20), N = intArg(env, info[3], "N", 1, 1024);
  const size_t M = (size_t)B * T, MI = M * nI;
  if ((double)MI * N > 1e9) throw err(env, "selectiveScan: B·T·I·N must be at most 1e9");
  const float *delta = F32(env, info[4], "delta", MI), *A = F32(env, info[5], "A", (size_t)nI * N);
  const float *Bm = F32(env, info[6], "Bm", M * N), *Cm = F32(env, info[7], "Cm", M * N);
  const float *x = F32(env, info[8], "x", MI), *D = F32(env, info[9], "D", nI);
  std::vector<float> hs(selective_scan_states(B, T, nI, N));
  auto y = Napi::Float32Array::New(env, MI);
  selective_scan(y.Data(), hs.data(), delta, A, Bm, N, Cm, N, x, D, B, T, nI, N);
  Napi::Object o = Napi::Object::New(env);
  o.Set("y", y);
  if (info.Length() > 10 && !info[10].IsUndefined()) {
    const float *dy = F32(env, info[10], "dy", MI);
    auto ddelta = Napi::Float32Array::New(env, MI), dx = Napi::Float32Array::New(env, MI);
    auto dB = Napi::Float32Array::New(env, M * N), dC = Napi::Float32Array::New(env, M * N);
    std::fill(dx.Data(), dx.Data() + MI, 0.f);
    std::vector<float> scratch(std::max(1L, selective_scan_backward_scratch(B, T, nI, N)));
    selective_scan_backward(ddelta.Data(), dx.Data(), dB.Data(), N, dC.Data(), N, dy, hs.data(), delta, A, Bm, Cm, x, D, scratch.data(), B, T, nI, N);
    o.Set("ddelta", ddelta), o.Set("dx", dx), o.Set("dB", dB), o.Set("dC", dC);
  }
  return o;
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("createModel", Napi::Function::New(env, CreateModel));
  exports.Set("createLlama", Napi::Function::New(env, CreateLlama));
  exports.Set("modelInfo", Napi::Function::New(env, ModelInfo));
  exports.Set("dispose", Napi::Function::New(env, Dispose));
  exports.Set("forwardLogits", Napi::Function::New(env, ForwardLogits));
  exports.Set("backwardEmbeds", Napi::Function::New(env, BackwardEmbeds));
  exports.Set("cramSteps", Napi::Function::New(env, CramSteps));
  exports.Set("generate", Napi::Function::New(env, Generate));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("embeddingStats", Napi::Function::New(env, EmbeddingStats));
  exports.Set("embedRows", Napi::Function::New(env, EmbedRows));
  exports.Set("embeddingMeanRow", Napi::Function::New(env, EmbeddingMeanRow));
  exports.Set("widenHalf", Napi::Function::New(env, WidenHalf));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  exports.Set("readBandwidth", Napi::Function::New(env, ReadBandwidth));
  exports.Set("selectiveScan", Napi::Function::New(env, SelectiveScan));
  return exports;
}

NODE_API_MODULE(cramlab_native, Init)
