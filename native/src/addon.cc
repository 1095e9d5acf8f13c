// N-API surface of the native engine. Every argument is checked here and a bad one throws a JS Error
// with a message; the C code below trusts its inputs.
//   createLlama(config, invFreq, tensors)  → handle (weights copied into native memory once)
//   dispose(handle)                         frees now (else on GC)
//   forwardLogits(handle, embeds, B, T)     → Float32Array [B, T, V]
//   cramSteps(handle, state, S)             → steps run (state's typed arrays updated in place)
//   generate(handle, prefix, P, maxNew, eos)→ Int32Array of greedy tokens (KV cache)
//   info() → {blas, threads};  setThreads(n)
#include <napi.h>
#include <algorithm>
#include <cmath>
#include <string>
#include <vector>
extern "C" {
#include "cram.h"
#include "kernels.h"
#include "llama.h"
}

enum { MAX_GROUPS = 16 };
struct Handle {
  Llama *m = nullptr;
  Acts *a = nullptr;               // forwardLogits, and group 0 of cramSteps
  Acts *groups[MAX_GROUPS] = {};  // one activation set per thread of cramSteps (groups[0] = a)
  void free() {
    for (int g = 1; g < MAX_GROUPS; g++)
      if (groups[g]) acts_free(groups[g]), groups[g] = nullptr;
    if (a) acts_free(a);
    if (m) llama_free(m);
    a = nullptr;
    m = nullptr;
  }
  ~Handle() { free(); }
};

static Napi::Error err(Napi::Env env, const std::string &msg) { return Napi::Error::New(env, "native engine: " + msg); }

static Handle *handleOf(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 1 || !info[0].IsExternal()) throw err(env, "first argument must be a model handle from createLlama");
  Handle *h = info[0].As<Napi::External<Handle>>().Data();
  if (!h || !h->m) throw err(env, "the model handle was disposed");
  return h;
}

static int intArg(Napi::Env env, Napi::Value v, const char *name, long lo, long hi) {
  if (!v.IsNumber()) throw err(env, std::string(name) + " must be a number");
  double x = v.As<Napi::Number>().DoubleValue();
  if (!(x == std::floor(x)) || x < lo || x > hi) throw err(env, std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "], got " + std::to_string(x));
  return (int)x;
}

static int cfgInt(Napi::Env env, Napi::Object cfg, const char *key, long lo, long hi) {
  return intArg(env, cfg.Get(key), key, lo, hi);
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

static Napi::Value CreateLlama(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  if (info.Length() < 3 || !info[0].IsObject() || !info[2].IsObject()) throw err(env, "createLlama(config, invFreq, tensors) needs 3 arguments");
  Napi::Object cfg = info[0].As<Napi::Object>();
  LlamaConfig c{};
  c.d = cfgInt(env, cfg, "hidden_size", 1, 1 << 16);
  c.vocab = cfgInt(env, cfg, "vocab_size", 1, 1 << 22);
  c.layers = cfgInt(env, cfg, "num_hidden_layers", 1, 1024);
  c.heads = cfgInt(env, cfg, "num_attention_heads", 1, 1024);
  c.kv_heads = cfgInt(env, cfg, "num_key_value_heads", 1, c.heads);
  c.head_dim = cfgInt(env, cfg, "head_dim", 2, 4096);
  c.inter = cfgInt(env, cfg, "intermediate_size", 1, 1 << 20);
  c.max_pos = cfgInt(env, cfg, "max_position_embeddings", 1, 1 << 20);
  if (!cfg.Get("rms_norm_eps").IsNumber()) throw err(env, "rms_norm_eps must be a number");
  c.eps = (float)cfg.Get("rms_norm_eps").As<Napi::Number>().DoubleValue();
  c.tied = cfg.Get("tied").ToBoolean();
  c.attention_bias = cfg.Get("attention_bias").ToBoolean();
  if (c.heads % c.kv_heads) throw err(env, "num_attention_heads must be a multiple of num_key_value_heads");
  if (c.head_dim % 2) throw err(env, "head_dim must be even (RoPE pairs)");
  const float *inv = F32(env, info[1], "invFreq", (size_t)c.head_dim / 2);
  Napi::Object t = info[2].As<Napi::Object>();

  Handle *h = new Handle();
  h->m = llama_new(&c);
  h->a = acts_new();
  if (!h->m || !h->a) {
    delete h;
    throw err(env, "out of memory allocating the model");
  }
  Llama *m = h->m;
  auto copy = [&](const std::string &name, float *dst, size_t n) {
    if (!t.Has(name)) throw err(env, "tensor '" + name + "' is missing");
    const float *src = F32(env, t.Get(name), "tensor '" + name + "'", n);
    std::copy(src, src + n, dst);
  };
  try {
    const size_t d = c.d, qd = (size_t)c.heads * c.head_dim, kvd = (size_t)c.kv_heads * c.head_dim, I = c.inter, V = c.vocab;
    std::copy(inv, inv + c.head_dim / 2, m->inv_freq);
    copy("model.embed_tokens.weight", m->embed_tokens, V * d);
    copy("model.norm.weight", m->norm, d);
    if (!c.tied) copy("lm_head.weight", m->lm_head, V * d);
    for (int i = 0; i < c.layers; i++) {
      const std::string p = "model.layers." + std::to_string(i) + ".";
      LlamaLayer *L = &m->layer[i];
      copy(p + "input_layernorm.weight", L->input_layernorm, d);
      copy(p + "self_attn.q_proj.weight", L->q_proj, qd * d);
      copy(p + "self_attn.k_proj.weight", L->k_proj, kvd * d);
      copy(p + "self_attn.v_proj.weight", L->v_proj, kvd * d);
      if (c.attention_bias) {
        copy(p + "self_attn.q_proj.bias", L->q_bias, qd);
        copy(p + "self_attn.k_proj.bias", L->k_bias, kvd);
        copy(p + "self_attn.v_proj.bias", L->v_bias, kvd);
      }
      copy(p + "self_attn.o_proj.weight", L->o_proj, d * qd);
      copy(p + "post_attention_layernorm.weight", L->post_attention_layernorm, d);
      copy(p + "mlp.gate_proj.weight", L->gate_proj, I * d);
      copy(p + "mlp.up_proj.weight", L->up_proj, I * d);
      copy(p + "mlp.down_proj.weight", L->down_proj, d * I);
    }
  } catch (...) {
    delete h;
    throw;
  }
  llama_tables(m);
  return Napi::External<Handle>::New(env, h, [](Napi::Env, Handle *p) { delete p; });
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
  const LlamaConfig &c = h->m->c;
  if (info.Length() < 4) throw err(env, "forwardLogits(handle, embeds, B, T) needs 4 arguments");
  const int B = intArg(env, info[2], "B", 1, 1 << 20);
  const int T = intArg(env, info[3], "T", 1, c.max_pos);
  const float *x = F32(env, info[1], "embeds", (size_t)B * T * c.d);
  checkFinite(env, x, (size_t)B * T * c.d, "embeds");
  if (!llama_forward(h->m, h->a, x, B, T)) throw err(env, "out of memory");
  auto out = Napi::Float32Array::New(env, (size_t)B * T * c.vocab);
  matmul(out.Data(), h->a->xnf, h->m->lm_head, NULL, B * T, c.d, c.vocab);
  return out;
}

// dL/dembeds for a given dL/dlogits: the forward again (its activations), dlogits·lm_head into the final
// norm, then the backward to the input. What tf.grad through NativeLlama.forward() calls.
static Napi::Value BackwardEmbeds(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Handle *h = handleOf(info);
  const LlamaConfig &c = h->m->c;
  if (info.Length() < 5) throw err(env, "backwardEmbeds(handle, embeds, dlogits, B, T) needs 5 arguments");
  const int B = intArg(env, info[3], "B", 1, 1 << 20);
  const int T = intArg(env, info[4], "T", 1, c.max_pos);
  const size_t M = (size_t)B * T;
  const float *x = F32(env, info[1], "embeds", M * c.d);
  const float *dy = F32(env, info[2], "dlogits", M * c.vocab);
  checkFinite(env, x, M * c.d, "embeds");
  checkFinite(env, dy, M * c.vocab, "dlogits");
  if (!llama_forward(h->m, h->a, x, B, T)) throw err(env, "out of memory");
  std::vector<float> dxnf(M * c.d, 0.f);
  matmul_backward(dxnf.data(), dy, h->m->lm_head, (int)M, c.d, c.vocab);
  auto out = Napi::Float32Array::New(env, M * c.d);
  llama_backward(h->m, h->a, dxnf.data(), out.Data());
  return out;
}

static Napi::Value CramSteps(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Handle *h = handleOf(info);
  const LlamaConfig &c = h->m->c;
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
  const size_t B = s.B, Kd = (size_t)s.K * c.d;
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
  if (o.Has("gradOut") && !o.Get("gradOut").IsUndefined()) s.grad_out = F32(env, o.Get("gradOut"), "gradOut", B * Kd);
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
  const int G = std::min(std::max(num_threads(), 1), (int)MAX_GROUPS);
  h->groups[0] = h->a;
  for (int g = 1; g < G; g++)
    if (!h->groups[g] && !(h->groups[g] = acts_new())) throw err(env, "out of memory");
  const int ran = cram_steps(h->m, h->groups, G, &s, S);
  if (ran < 0) throw err(env, "out of memory");
  return Napi::Number::New(env, ran);
}

static Napi::Value Generate(const Napi::CallbackInfo &info) {
  Napi::Env env = info.Env();
  Handle *h = handleOf(info);
  const LlamaConfig &c = h->m->c;
  if (info.Length() < 5) throw err(env, "generate(handle, prefix, P, maxNew, eos) needs 5 arguments");
  const int P = intArg(env, info[2], "P", 1, c.max_pos);
  const int maxNew = intArg(env, info[3], "maxNew", 0, c.max_pos - P);
  const float *x = F32(env, info[1], "prefix", (size_t)P * c.d);
  checkFinite(env, x, (size_t)P * c.d, "prefix");
  Napi::Value eosV = info[4];
  const int32_t *eos = I32(env, eosV, "eos", (size_t)-1);
  const size_t nEos = eosV.As<Napi::Int32Array>().ElementLength();
  std::vector<int32_t> out;
  if (maxNew > 0) {
    KVCache *kc = kv_new(h->m, P + maxNew);
    std::vector<float> logits(c.vocab);
    if (!kc) throw err(env, "out of memory");
    int ok = llama_decode(h->m, kc, x, P, logits.data());
    while (ok && (int)out.size() < maxNew) {
      int best = 0;
      for (int i = 1; i < c.vocab; i++)
        if (logits[i] > logits[best]) best = i;
      out.push_back(best);
      bool stop = false;
      for (size_t e = 0; e < nEos; e++) stop = stop || eos[e] == best;
      if (stop || (int)out.size() >= maxNew) break;
      ok = llama_decode(h->m, kc, h->m->embed_tokens + (size_t)best * c.d, 1, logits.data());
    }
    kv_free(kc);
    if (!ok) throw err(env, "out of memory");
  }
  auto arr = Napi::Int32Array::New(env, out.size());
  std::copy(out.begin(), out.end(), arr.Data());
  return arr;
}

static Napi::Value Info(const Napi::CallbackInfo &info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("blas", blas_name());
  o.Set("threads", num_threads());
  return o;
}

static Napi::Value SetThreads(const Napi::CallbackInfo &info) {
  set_threads(intArg(info.Env(), info[0], "threads", 1, 1024));
  return info.Env().Undefined();
}

static Napi::Object Init(Napi::Env env, Napi::Object exports) {
  exports.Set("createLlama", Napi::Function::New(env, CreateLlama));
  exports.Set("dispose", Napi::Function::New(env, Dispose));
  exports.Set("forwardLogits", Napi::Function::New(env, ForwardLogits));
  exports.Set("backwardEmbeds", Napi::Function::New(env, BackwardEmbeds));
  exports.Set("cramSteps", Napi::Function::New(env, CramSteps));
  exports.Set("generate", Napi::Function::New(env, Generate));
  exports.Set("info", Napi::Function::New(env, Info));
  exports.Set("setThreads", Napi::Function::New(env, SetThreads));
  return exports;
}

NODE_API_MODULE(cramlab_native, Init)
