// The math of the transformer blocks (Llama, GPT-NeoX, OPT, OLMo) and of Mamba, each forward beside its backward. Row-major float32 throughout.
// Shapes in comments: M rows (batch·time), K/N feature sizes, B batch, T time, H heads, D head size.
#ifndef CRAMLAB_KERNELS_H
#define CRAMLAB_KERNELS_H
#include <stddef.h>
#ifdef __cplusplus
extern "C" {
#endif

/** "openblas 0.3.21" / "accelerate" / "built-in" */
const char *blas_name(void);
int num_threads(void);
void set_threads(int n); // OpenMP's; the BLAS itself always runs on one (matmul splits rows over OpenMP threads)

// A frozen weight matrix [rows, cols] as its checkpoint stores it: fp32, or bf16 / f16 bits (2 bytes a
// weight), widened to fp32 where it is used (exact: every bf16/f16 value is a float). The GEMMs split W
// into the same panels whatever its dtype, so a bf16 matrix gives the bits of its fp32-widened copy.
enum { DT_F32 = 0, DT_BF16 = 1, DT_F16 = 2 };
typedef struct {
  void *p; // [rows·cols] values of dtype (NULL until the addon fills the slot)
  int dtype;
} Mat;
int dtype_bytes(int dtype);
// storage for a weight matrix of `bytes` (free() it): big ones 2 MB-aligned and marked for transparent huge
// pages, so reading a checkpoint into it takes one page fault per 2 MB instead of one per 4 kB
void *weights_alloc(size_t bytes);
// dst[n] = src[n] widened to fp32 (vectorised: bf16 by a shift, f16 by F16C where the CPU has it)
void widen(float *dst, const void *src, int dtype, long n);
// dst[cols] = row `row` of W, as fp32
void mat_row(float *dst, Mat W, long row, int cols);
// GB/s of a streaming read over `bytes` of memory with the OpenMP threads (best of 3): the decode's bound
double read_bandwidth_gbs(long bytes);
// mean and unbiased std of W's n values, summed in float64 (the [mem] init scale, std(E))
void mat_stats(Mat W, long n, double *mean, double *std);
// out[cols] = the mean of W [rows, cols]'s rows, summed in float64 (the low-rank bias: E's mean row); -1 if out of memory
int mat_col_mean(Mat W, long rows, int cols, float *out);
// index of the first NaN/±Inf of W's n values, or -1
long mat_first_nonfinite(Mat W, long n);

// out[M,N] = X[M,K]·W[N,K]^T (+ b[N] when b). M = 1 (a decode step) is a matrix–vector product that reads
// W as stored, threaded over output rows (memory-bound: 2-byte weights halve it).
void matmul(float *out, const float *X, Mat W, const float *b, int M, int K, int N);
// dX[M,K] += dY[M,N]·W[N,K]   (the input-gradient of matmul; weights are frozen)
void matmul_backward(float *dX, const float *dY, Mat W, int M, int K, int N);

// y = x·r·w with r = 1/sqrt(mean(x²) + eps), per row of x[M,d]; keeps r[M] for the backward
void rmsnorm(float *y, float *r, const float *x, const float *w, int M, int d, float eps);
// dx[M,d] += r·(dn - n·mean(dn·n)) with n = x·r, dn = dy·w
void rmsnorm_backward(float *dx, const float *dy, const float *x, const float *r, const float *w, int M, int d);

// y = (x - mean)·r·w + b with r = 1/sqrt(var(x) + eps) per row of x[M,d] (w, b may be NULL: weightless
// LayerNorm, OLMo); keeps mean[M], r[M] for the backward
void layernorm(float *y, float *mean, float *r, const float *x, const float *w, const float *b, int M, int d, float eps);
// dx[M,d] += r·(dn - mean(dn) - n·mean(dn·n)) with n = (x - mean)·r, dn = dy·w
void layernorm_backward(float *dx, const float *dy, const float *x, const float *mean, const float *r, const float *w, int M, int d);

// rotate-half RoPE on the first rot dims of every head of x[B,T,H,D] (GPT-NeoX rotary_pct < 1): pair
// (j, j+rot/2) turns by angle pos·inv_freq[j], pos = t + pos0; dims rot..D-1 pass through. Tables [·, rot/2].
void rope_partial(float *x, const float *cos_t, const float *sin_t, int B, int T, int H, int D, int rot, int pos0);
void rope_partial_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int H, int D, int rot);

// rotate-half RoPE in place on x[B,T,H,D]: pair (j, j+D/2) turns by angle pos·inv_freq[j]; pos = t + pos0
void rope(float *x, const float *cos_t, const float *sin_t, int B, int T, int H, int D, int pos0);
// its transpose (the rotation back) on the gradient
void rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int H, int D);
// tables [T, D/2]: cos/sin of fround(t·inv_freq[j]) (as layers.ts ropeTables)
void rope_tables(float *cos_t, float *sin_t, const float *inv_freq, int T, int half);

// causal GQA attention: q[B,T,Hq,D], k,v[B,T,Hkv,D] → o[B,T,Hq,D]; lse[B,Hq,T] kept for the backward
void attention(float *o, float *lse, const float *q, const float *k, const float *v, int B, int T, int Hq, int Hkv, int D);
// dq, dk, dv (overwritten) from do; recomputes the probabilities from lse
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *o, const float *lse,
                        const float *q, const float *k, const float *v, int B, int T, int Hq, int Hkv, int D);

// attention of n new positions q[n,Hq,D] (positions p0..p0+n-1) over a KV cache K, V [p0+n, Hkv,D]
// holding every position up to the new ones (causal): o[n,Hq,D]
void attention_cached(float *o, const float *q, const float *K, const float *V, int n, int p0, int Hq, int Hkv, int D);

// y[n] += x[n]
void add_inplace(float *y, const float *x, long n);

// act[M,I] = silu(g)·u
void swiglu(float *act, const float *g, const float *u, long n);
// dg, du (overwritten) from dact
void swiglu_backward(float *dg, float *du, const float *dact, const float *g, const float *u, long n);

// exact GELU, y = 0.5·x·(1 + erf(x/√2)) (torch's default, GPT-NeoX hidden_act "gelu")
void gelu(float *y, const float *x, long n);
// dx = dy·(Φ(x) + x·φ(x)) (overwritten)
void gelu_backward(float *dx, const float *dy, const float *x, long n);

// y = max(x, 0); backward dx = dy where x > 0, else 0 (overwritten)
void relu(float *y, const float *x, long n);
void relu_backward(float *dx, const float *dy, const float *x, long n);

// x = clamp(x, -c, c) in place (OLMo clip_qkv); pass[i] = 1 where -c ≤ x ≤ c (the gradient passes), else 0
void clamp(float *x, unsigned char *pass, long n, float c);
// dx[i] = 0 where the clamp bit (pass[i] = 0)
void clamp_backward(float *dx, const unsigned char *pass, long n);

// learned positions: h[b,t,:] += table[row0 + t, :] for h[B,T,d] (OPT: row0 = 2 + first position)
void add_positions(float *h, const float *table, int B, int T, int d, int row0);

// per row of logits[M,V]: ce = logsumexp - logit[target]; hit = argmax == target (first max wins);
// when dlogits: dlogits = (softmax - onehot(target))·weight[row]
void cross_entropy(float *ce, int *hit, float *dlogits, const float *logits, const int *target, const float *weight, int M, int V);

// ---- Mamba kernels (mamba.c)

// y = softplus(x) = log(1 + e^x) (x itself above 20, torch's threshold); backward dx = dy·sigmoid(x) (overwritten)
void softplus(float *y, const float *x, long n);
void softplus_backward(float *dx, const float *dy, const float *x, long n);
// y = x·sigmoid(x); backward dx = dy·s·(1 + x·(1 - s)), s = sigmoid(x) (overwritten)
void silu(float *y, const float *x, long n);
void silu_backward(float *dx, const float *dy, const float *x, long n);

// depthwise causal conv over time, x, y [B,T,C], w [C,K] (HF conv1d.weight [C,1,K]), b [C] or NULL:
//   y[b,t,c] = b[c] + Σ_j w[c,j]·x[b, t-(K-1)+j, c]   (zeros before t = 0)
void conv1d_causal(float *y, const float *x, const float *w, const float *b, int B, int T, int C, int K);
// dx [B,T,C] (overwritten) from dy
void conv1d_causal_backward(float *dx, const float *dy, const float *w, int B, int T, int C, int K);

// the selective scan, one step at a time (HF MambaMixer.slow_forward), per batch row b and channel i
// (nI: the channel count I; I itself is complex.h's macro):
//   h_t[n] = exp(Δ_t·A[i,n])·h_{t-1}[n] + Δ_t·B_t[n]·x_t      (h_{-1} = 0)
//   y_t    = Σ_n C_t[n]·h_t[n] + D[i]·x_t
// delta, x, y [B,T,I]; A [I,N]; B_t, C_t rows of width N at strides ldb, ldc per (b,t) (views into x_proj's
// output). For the backward hs keeps the state at the end of every chunk of SCAN_CHUNK steps:
// [B, ceil(T/SCAN_CHUNK), I, N], selective_scan_states(B, T, I, N) values (the backward recomputes the rest).
enum { SCAN_CHUNK = 16 };
long selective_scan_states(int B, int T, int nI, int N);
void selective_scan(float *y, float *hs, const float *delta, const float *A, const float *Bm, int ldb, const float *Cm, int ldc,
                    const float *x, const float *D, int B, int T, int nI, int N);
// one step of every channel from the state h [I,N] (updated in place; zeros before the first step): the
// recurrent decode. delta, x, y [I]; B, C [N]. Same arithmetic as one step of selective_scan.
void selective_scan_step(float *y, float *h, const float *delta, const float *A, const float *Bm, const float *Cm, const float *x,
                         const float *D, int nI, int N);
// from dy [B,T,I]: ddelta [B,T,I] (overwritten), dx [B,T,I] (added to), dB, dC (overwritten, strides ldb, ldc).
// scratch: selective_scan_backward_scratch(B, T, I, N) floats (0: may be NULL), per-group dB/dC partial sums.
long selective_scan_backward_scratch(int B, int T, int nI, int N);
void selective_scan_backward(float *ddelta, float *dx, float *dB, int ldb, float *dC, int ldc, const float *dy, const float *hs,
                             const float *delta, const float *A, const float *Bm, const float *Cm, const float *x, const float *D,
                             float *scratch, int B, int T, int nI, int N);

#ifdef __cplusplus
}
#endif
#endif
