// Kernels of kernels.h. GEMMs go to cblas_sgemm when built with a BLAS (CRAMLAB_BLAS_OPENBLAS /
// CRAMLAB_BLAS_ACCELERATE), else to a blocked loop the compiler vectorises; the rest is OpenMP
// over rows or (batch, head). No -ffast-math: reductions keep their order (plain float, double sums
// where a long sum decides a loss).
#define _DEFAULT_SOURCE // posix_memalign, madvise under -std=c11
#include "kernels.h"
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <stdint.h>
#include <stdio.h>
#if defined(__linux__)
#include <sys/mman.h>
#endif
#ifdef __F16C__
#include <immintrin.h>
#endif
#ifdef _OPENMP
#include <omp.h>
#endif

#if defined(CRAMLAB_BLAS_OPENBLAS)
#include <cblas.h>
#elif defined(CRAMLAB_BLAS_ACCELERATE)
#include <Accelerate/Accelerate.h>
#endif

const char *blas_name(void) {
#if defined(CRAMLAB_BLAS_OPENBLAS)
  static char name[64];
  if (!name[0]) {
    // openblas_get_config(): "OpenBLAS 0.3.21 DYNAMIC_ARCH ..." → "openblas 0.3.21"
    const char *c = openblas_get_config();
    char ver[32] = "";
    // + the kernels it picked for this CPU (openblas_get_corename: "Haswell", "SkylakeX", …)
    const char *core = openblas_get_corename();
    if (c && sscanf(c, "OpenBLAS %31s", ver) == 1) snprintf(name, sizeof name, "openblas %s %s", ver, core ? core : "");
    else snprintf(name, sizeof name, "openblas");
  }
  return name;
#elif defined(CRAMLAB_BLAS_ACCELERATE)
  return "accelerate";
#else
  return "built-in";
#endif
}

int num_threads(void) {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

void set_threads(int n) {
#ifdef _OPENMP
  omp_set_num_threads(n);
#else
  (void)n;
#endif
}

// Threads only pay off above some work per parallel region (a region costs µs, and far more when
// the machine is oversubscribed and a waiting thread is descheduled): small ops run serially.
#define PAR_MIN (1L << 17)
#define PAR_IF(work) if ((long)(work) > PAR_MIN)


// ---- weights as stored: bf16 / f16 → fp32 (exact)

int dtype_bytes(int dtype) { return dtype == DT_F32 ? 4 : 2; }

void *weights_alloc(size_t bytes) {
  enum { HUGE = 1 << 21 };
  if (bytes < (size_t)HUGE) return malloc(bytes ? bytes : 1);
  void *p = NULL;
  if (posix_memalign(&p, HUGE, bytes)) return NULL;
#ifdef MADV_HUGEPAGE
  madvise(p, bytes, MADV_HUGEPAGE); // advice only: without THP the pages are 4 kB, as malloc's
#endif
  return p;
}

static inline float bf16_f32(uint16_t h) {
  const uint32_t u = (uint32_t)h << 16;
  float f;
  memcpy(&f, &u, sizeof f);
  return f;
}

static inline float f16_f32(uint16_t h) {
  const uint32_t s = (uint32_t)(h & 0x8000) << 16, e = (h >> 10) & 0x1f, f = h & 0x3ff;
  uint32_t u;
  if (e == 0) { // zero or subnormal: f·2^-24, exact in float
    const float v = (float)f * 5.9604644775390625e-8f;
    memcpy(&u, &v, sizeof u);
    u |= s;
  } else if (e == 31) u = s | 0x7f800000u | (f << 13); // inf / NaN
  else u = s | ((e + 112) << 23) | (f << 13);
  float out;
  memcpy(&out, &u, sizeof out);
  return out;
}

// n values from src (no threads: callers thread around it)
static void widen_serial(float *dst, const void *src, int dtype, long n) {
  if (dtype == DT_F32) {
    memcpy(dst, src, sizeof(float) * n);
    return;
  }
  const uint16_t *h = (const uint16_t *)src;
  long i = 0;
  if (dtype == DT_BF16) {
    for (; i < n; i++) dst[i] = bf16_f32(h[i]);
    return;
  }
#ifdef __F16C__
  for (; i + 8 <= n; i += 8) _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(h + i))));
#endif
  for (; i < n; i++) dst[i] = f16_f32(h[i]);
}

enum { WIDEN_BLOCK = 1 << 14 };

void widen(float *dst, const void *src, int dtype, long n) {
  const long nb = (n + WIDEN_BLOCK - 1) / WIDEN_BLOCK;
  const char *s = (const char *)src;
  const int bytes = dtype_bytes(dtype);
#pragma omp parallel for schedule(static) PAR_IF(n * 2)
  for (long k = 0; k < nb; k++) {
    const long i0 = k * WIDEN_BLOCK, m = n - i0 < WIDEN_BLOCK ? n - i0 : WIDEN_BLOCK;
    widen_serial(dst + i0, s + i0 * bytes, dtype, m);
  }
}

void mat_row(float *dst, Mat W, long row, int cols) { widen_serial(dst, (const char *)W.p + row * cols * dtype_bytes(W.dtype), W.dtype, cols); }

// Sums per fixed block of values, then the blocks in order: the same double whatever the thread count.
static double mat_sum(Mat W, long n, double mean, int squares) {
  const long nb = (n + WIDEN_BLOCK - 1) / WIDEN_BLOCK;
  double *part = (double *)malloc(sizeof(double) * (nb ? nb : 1));
  if (!part) return NAN;
#pragma omp parallel for schedule(static) PAR_IF(n * 4)
  for (long k = 0; k < nb; k++) {
    float buf[WIDEN_BLOCK];
    const long i0 = k * WIDEN_BLOCK, m = n - i0 < WIDEN_BLOCK ? n - i0 : WIDEN_BLOCK;
    widen_serial(buf, (const char *)W.p + i0 * dtype_bytes(W.dtype), W.dtype, m);
    double s = 0.0;
    for (long i = 0; i < m; i++) {
      const double v = (double)buf[i] - mean;
      s += squares ? v * v : v;
    }
    part[k] = s;
  }
  double s = 0.0;
  for (long k = 0; k < nb; k++) s += part[k];
  free(part);
  return s;
}

// Column means of W [rows, cols] in float64: per fixed block of rows a partial sum, then the blocks in
// order (the same bits whatever the thread count). The low-rank bias b = E's mean row, read as stored.
int mat_col_mean(Mat W, long rows, int cols, float *out) {
  enum { ROWS = 1024 };
  const long nb = (rows + ROWS - 1) / ROWS;
  double *part = (double *)calloc((size_t)(nb ? nb : 1) * cols, sizeof(double));
  if (!part) return -1;
#pragma omp parallel for schedule(static) PAR_IF(rows * cols * 2)
  for (long k = 0; k < nb; k++) {
    float row[cols]; // ≤ 16 kB: a model width
    double *p = part + k * cols;
    for (long r = k * ROWS; r < rows && r < (k + 1) * ROWS; r++) {
      widen_serial(row, (const char *)W.p + r * cols * dtype_bytes(W.dtype), W.dtype, cols);
      for (int c = 0; c < cols; c++) p[c] += row[c];
    }
  }
  for (int c = 0; c < cols; c++) {
    double s = 0.0;
    for (long k = 0; k < nb; k++) s += part[k * cols + c];
    out[c] = (float)(s / rows);
  }
  free(part);
  return 0;
}

void mat_stats(Mat W, long n, double *mean, double *std) {
  *mean = n > 0 ? mat_sum(W, n, 0.0, 0) / n : NAN;
  *std = n > 1 ? sqrt(mat_sum(W, n, *mean, 1) / (n - 1)) : NAN;
}

// Per block: an OR over "exponent all ones" (vectorises), and a scan for the first only in a bad block.
// One thread (≈ 12 GB/s): the loader calls it on each 1 MB piece as it arrives, and a parallel region
// per piece cost ~10 ms each on a busy machine (2 GB of BF16: 1.7 s with 2 threads at load 5, 0.19 s on one).
long mat_first_nonfinite(Mat W, long n) {
  const long nb = (n + WIDEN_BLOCK - 1) / WIDEN_BLOCK;
  long first = n;
  for (long k = 0; k < nb; k++) {
    const long i0 = k * WIDEN_BLOCK, i1 = n - i0 < WIDEN_BLOCK ? n : i0 + WIDEN_BLOCK;
    int any = 0;
    if (W.dtype == DT_F32) {
      const uint32_t *u = (const uint32_t *)W.p;
      for (long i = i0; i < i1; i++) any |= (u[i] & 0x7f800000u) == 0x7f800000u;
      if (any)
        for (long i = i0; i < i1; i++)
          if ((u[i] & 0x7f800000u) == 0x7f800000u) {
            if (i < first) first = i;
            break;
          }
    } else {
      const uint16_t *h = (const uint16_t *)W.p, e = W.dtype == DT_BF16 ? 0x7f80 : 0x7c00;
      for (long i = i0; i < i1; i++) any |= (h[i] & e) == e;
      if (any)
        for (long i = i0; i < i1; i++)
          if ((h[i] & e) == e) {
            if (i < first) first = i;
            break;
          }
    }
  }
  return first < n ? first : -1;
}

// ---- memory bandwidth (the decode's bound: a token reads every weight once)

// GB/s of a streaming read (a sum) over a buffer of `bytes`, threads as the decode's matvecs; best of 3
double read_bandwidth_gbs(long bytes) {
  const long n = bytes / (long)sizeof(float);
  float *buf = (float *)malloc(sizeof(float) * (n > 0 ? n : 1));
  if (!buf || n <= 0) return free(buf), NAN;
#pragma omp parallel for schedule(static)
  for (long i = 0; i < n; i++) buf[i] = (float)(i & 7); // touched: resident before timing
  double best = 0.0, sink = 0.0;
  for (int rep = 0; rep < 3; rep++) {
#ifdef _OPENMP
    const double t0 = omp_get_wtime();
#endif
    float total = 0.f;
#pragma omp parallel reduction(+ : total)
    {
      float acc[16] = {0.f}; // 16 lanes, as matvec: one vector add per 64 bytes
#pragma omp for schedule(static)
      for (long k = 0; k < n / 16; k++)
        for (int j = 0; j < 16; j++) acc[j] += buf[k * 16 + j];
      for (int j = 0; j < 16; j++) total += acc[j];
    }
#ifdef _OPENMP
    const double s = omp_get_wtime() - t0;
    if (s > 0 && bytes / s / 1e9 > best) best = bytes / s / 1e9;
#endif
    sink += total;
  }
  free(buf);
  return sink == -1.0 ? 0.0 : best; // (sink keeps the sums from being optimised away)
}

// ---- GEMM

#if !defined(CRAMLAB_BLAS_OPENBLAS) && !defined(CRAMLAB_BLAS_ACCELERATE)
enum { NB = 64, KB = 256 };
// Built-in out = X·W^T (out's rows ldo apart): each thread takes a range of rows and walks W in [KB x NB]
// blocks packed transposed, so the inner loop is an axpy over NB contiguous outputs (vectorises, no reassociation).
static void gemm_nt(float *out, const float *X, const float *W, int M, int K, int N, int ldo) {
#pragma omp parallel PAR_IF((long)M * N * K)
  {
    float pack[KB * NB];
    int nt = 1, id = 0;
#ifdef _OPENMP
    nt = omp_get_num_threads();
    id = omp_get_thread_num();
#endif
    int m0 = (int)((long)M * id / nt), m1 = (int)((long)M * (id + 1) / nt);
    for (int m = m0; m < m1; m++) memset(out + (long)m * ldo, 0, sizeof(float) * N);
    if (m1 > m0)
      for (int n0 = 0; n0 < N; n0 += NB) {
        int nb = N - n0 < NB ? N - n0 : NB;
        for (int k0 = 0; k0 < K; k0 += KB) {
          int kb = K - k0 < KB ? K - k0 : KB;
          for (int n = 0; n < nb; n++)
            for (int k = 0; k < kb; k++) pack[k * NB + n] = W[(long)(n0 + n) * K + k0 + k];
          for (int m = m0; m < m1; m++) {
            float acc[NB];
            float *o = out + (long)m * ldo + n0;
            for (int n = 0; n < NB; n++) acc[n] = n < nb ? o[n] : 0.f;
            const float *x = X + (long)m * K + k0;
            for (int k = 0; k < kb; k++) {
              const float xv = x[k];
              const float *p = pack + k * NB;
              for (int n = 0; n < NB; n++) acc[n] += xv * p[n];
            }
            for (int n = 0; n < nb; n++) o[n] = acc[n];
          }
        }
      }
  }
}

// Built-in dX += dY·W (dY's rows ldy apart): rows of dX are axpys of rows of W.
static void gemm_nn_acc(float *dX, const float *dY, const float *W, int M, int K, int N, int ldy) {
#pragma omp parallel for schedule(static) PAR_IF((long)M * N * K)
  for (int m = 0; m < M; m++) {
    float *dx = dX + (long)m * K;
    const float *dy = dY + (long)m * ldy;
    for (int n = 0; n < N; n++) {
      const float g = dy[n];
      if (g == 0.f) continue; // padded / unscored rows are zero
      const float *w = W + (long)n * K;
      for (int k = 0; k < K; k++) dx[k] += g * w[k];
    }
  }
}
#endif

// The backward's reduction runs over W's rows in panels (≈ 4 MB as fp32), the same panels for every dtype
// and thread count: same sums, same bits. A 2-byte block is widened into its thread's buffer just before
// its GEMM reads it (cache-warm); an fp32 one is read in place.
enum { PANEL_FLOATS = 1 << 20, BLOCK_FLOATS = 1 << 19 };
static int rows_per(long floats, int K, int min_rows) {
  long r = floats / (K > 0 ? K : 1);
  r -= r % 16;
  return r < min_rows ? min_rows : (int)r;
}
static int panel_rows(int K) { return rows_per(PANEL_FLOATS, K, 16); }

static _Thread_local float *panel_buf;
static _Thread_local long panel_cap;

// rows [r0, r0+rows) × columns [c0, c0+cols) of W [·, K] as fp32, its rows *ld apart
static const float *block(Mat W, long r0, int rows, int K, int c0, int cols, int *ld) {
  if (W.dtype == DT_F32) {
    *ld = K;
    return (const float *)W.p + r0 * K + c0;
  }
  const long n = (long)rows * cols;
  if (n > panel_cap) {
    free(panel_buf);
    panel_buf = (float *)malloc(sizeof(float) * n);
    panel_cap = panel_buf ? n : 0;
    if (!panel_buf) {
      fprintf(stderr, "cramlab native: out of memory widening a %ld-value weight block\n", n);
      abort();
    }
  }
  for (int r = 0; r < rows; r++) widen_serial(panel_buf + (long)r * cols, (const uint16_t *)W.p + (r0 + r) * K + c0, W.dtype, cols);
  *ld = cols;
  return panel_buf;
}

// out[n] = x·W[n,:] (+ b[n]): 16 partial sums in a fixed order (vectorised, deterministic), 2-byte weights
// widened in registers; threads over output rows of matrices of 512k+ weights only (a decode step runs
// hundreds of matvecs: below that a fork/join costs more than it saves, far more on a busy machine, where
// a descheduled thread holds up the join: W3 BF16 decode, 2 threads at load 13, 751 ms/token with a region
// for every matrix, 43 ms on one thread; quiet, 2 threads: 8.1 ms/token = 65% of stream bandwidth).
static void matvec(float *out, const float *x, Mat W, const float *b, int K, int N) {
#pragma omp parallel for schedule(static) if ((long)N * K >= (1L << 19))
  for (int n = 0; n < N; n++) {
    float acc[16] = {0.f};
    int k = 0;
    float s = 0.f;
    if (W.dtype == DT_F32) {
      const float *w = (const float *)W.p + (long)n * K;
      for (; k + 16 <= K; k += 16)
        for (int j = 0; j < 16; j++) acc[j] += x[k + j] * w[k + j];
      for (int j = 0; j < 16; j++) s += acc[j];
      for (; k < K; k++) s += x[k] * w[k];
    } else if (W.dtype == DT_BF16) {
      const uint16_t *w = (const uint16_t *)W.p + (long)n * K;
      for (; k + 16 <= K; k += 16)
        for (int j = 0; j < 16; j++) acc[j] += x[k + j] * bf16_f32(w[k + j]);
      for (int j = 0; j < 16; j++) s += acc[j];
      for (; k < K; k++) s += x[k] * bf16_f32(w[k]);
    } else {
      const uint16_t *w = (const uint16_t *)W.p + (long)n * K;
#if defined(__F16C__) && defined(__AVX__)
      // the 16 lanes in two registers, widened by vcvtph2ps: a multiply then an add, as the loops above
      // (no FMA), so the bits equal the fp32 path's (a widen-to-memory per 16 weights ran at 30% of bandwidth)
      __m256 a0 = _mm256_setzero_ps(), a1 = _mm256_setzero_ps();
      for (; k + 16 <= K; k += 16) {
        const __m256 w0 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + k)));
        const __m256 w1 = _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(w + k + 8)));
        a0 = _mm256_add_ps(a0, _mm256_mul_ps(_mm256_loadu_ps(x + k), w0));
        a1 = _mm256_add_ps(a1, _mm256_mul_ps(_mm256_loadu_ps(x + k + 8), w1));
      }
      _mm256_storeu_ps(acc, a0);
      _mm256_storeu_ps(acc + 8, a1);
#else
      for (; k + 16 <= K; k += 16)
        for (int j = 0; j < 16; j++) acc[j] += x[k + j] * f16_f32(w[k + j]);
#endif
      for (int j = 0; j < 16; j++) s += acc[j];
      for (; k < K; k++) s += x[k] * f16_f32(w[k]);
    }
    out[n] = b ? s + b[n] : s;
  }
}

// The BLAS runs on one thread, always: the threads are OpenMP's. Outside a parallel region (one group of
// texts: B < threads) a GEMM splits W over them, one region per GEMM: the forward W's rows (each thread
// packs and widens only its share of the weights; a split of the M ≈ 65 token rows made every thread pack
// all of them), the backward W's columns (dX's columns: the reduction over W's rows stays whole, in the
// same panels). Inside a region (a group per thread) it runs whole. One pool of threads: OpenBLAS's own
// pool, spinning next to OpenMP's on the same cores, made one text cost more CPU per step than four.
static int gemm_slices(int cols, long work) {
#if defined(_OPENMP) && (defined(CRAMLAB_BLAS_OPENBLAS) || defined(CRAMLAB_BLAS_ACCELERATE))
  if (omp_in_parallel() || work < (1L << 21)) return 1;
  int t = omp_get_max_threads();
  if (t > cols / 64) t = cols / 64; // ≥ 64 weight rows / columns a slice
  return t > 1 ? t : 1;
#else
  (void)cols, (void)work;
  return 1; // the built-in GEMM threads over rows itself
#endif
}

#if defined(CRAMLAB_BLAS_OPENBLAS)
__attribute__((constructor)) static void blas_one_thread(void) { openblas_set_num_threads(1); }
#endif

static int thread_id(void) {
#ifdef _OPENMP
  return omp_get_thread_num();
#else
  return 0;
#endif
}

void matmul(float *out, const float *X, Mat W, const float *b, int M, int K, int N) {
  if (M <= 0) return;
  if (M == 1) {
    matvec(out, X, W, b, K, N);
    return;
  }
#if defined(CRAMLAB_BLAS_OPENBLAS) || defined(CRAMLAB_BLAS_ACCELERATE)
  const int S = gemm_slices(N, (long)M * N * K);
  // rows of W per block: ≈ 2 MB of fp32, ≥ 64 rows (each GEMM call packs X again). fp32 takes the same
  // blocks: OpenBLAS's sums depend on how the rows are cut (its edge kernels), so this keeps the bits.
  const int P = rows_per(BLOCK_FLOATS, K, 64);
#pragma omp parallel num_threads(S) if (S > 1)
  {
    const int id = S > 1 ? thread_id() : 0;
    const int lo = (int)((long)N * id / S), hi = (int)((long)N * (id + 1) / S);
    for (int n0 = lo; n0 < hi; n0 += P) {
      const int nb = hi - n0 < P ? hi - n0 : P;
      int ld;
      const float *w = block(W, n0, nb, K, 0, K, &ld);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, M, nb, K, 1.f, X, K, w, ld, 0.f, out + n0, N);
      if (b)
        for (int m = 0; m < M; m++)
          for (int n = n0; n < n0 + nb; n++) out[(long)m * N + n] += b[n];
    }
  }
#else
  const int P = panel_rows(K);
  for (int n0 = 0; n0 < N; n0 += P) {
    const int nb = N - n0 < P ? N - n0 : P;
    int ld;
    gemm_nt(out + n0, X, block(W, n0, nb, K, 0, K, &ld), M, K, nb, N);
  }
  if (b) {
#pragma omp parallel for schedule(static) PAR_IF((long)M * N)
    for (int m = 0; m < M; m++)
      for (int n = 0; n < N; n++) out[(long)m * N + n] += b[n];
  }
#endif
}

void matmul_backward(float *dX, const float *dY, Mat W, int M, int K, int N) {
  if (M <= 0) return;
  const int P = panel_rows(K);
#if defined(CRAMLAB_BLAS_OPENBLAS) || defined(CRAMLAB_BLAS_ACCELERATE)
  const int S = gemm_slices(K, (long)M * N * K);
#pragma omp parallel num_threads(S) if (S > 1)
  {
    const int id = S > 1 ? thread_id() : 0;
    const int lo = (int)((long)K * id / S), kc = (int)((long)K * (id + 1) / S) - lo;
    for (int n0 = 0; n0 < N; n0 += P) {
      const int nb = N - n0 < P ? N - n0 : P;
      int ld;
      const float *w = block(W, n0, nb, K, lo, kc, &ld);
      cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, kc, nb, 1.f, dY + n0, N, w, ld, 1.f, dX + lo, K);
    }
  }
#else
  for (int n0 = 0; n0 < N; n0 += P) {
    const int nb = N - n0 < P ? N - n0 : P;
    int ld;
    gemm_nn_acc(dX, dY + n0, block(W, n0, nb, K, 0, K, &ld), M, K, nb, N);
  }
#endif
}

// ---- RMSNorm

void rmsnorm(float *y, float *r, const float *x, const float *w, int M, int d, float eps) {
#pragma omp parallel for schedule(static) PAR_IF((long)M * d * 4)
  for (int m = 0; m < M; m++) {
    const float *xm = x + (long)m * d;
    float ss = 0.f;
    for (int i = 0; i < d; i++) ss += xm[i] * xm[i];
    const float rm = 1.f / sqrtf(ss / d + eps);
    r[m] = rm;
    for (int i = 0; i < d; i++) y[(long)m * d + i] = xm[i] * rm * w[i];
  }
}

void rmsnorm_backward(float *dx, const float *dy, const float *x, const float *r, const float *w, int M, int d) {
#pragma omp parallel for schedule(static) PAR_IF((long)M * d * 8)
  for (int m = 0; m < M; m++) {
    const float *xm = x + (long)m * d, *dym = dy + (long)m * d;
    const float rm = r[m];
    float dot = 0.f; // mean(dn·n)
    for (int i = 0; i < d; i++) dot += dym[i] * w[i] * xm[i] * rm;
    dot /= d;
    for (int i = 0; i < d; i++) dx[(long)m * d + i] += rm * (dym[i] * w[i] - xm[i] * rm * dot);
  }
}

// ---- LayerNorm (tfjs layers.ts: mean, centered, mean of squares of centered, rsqrt(var + eps))

void layernorm(float *y, float *mean, float *r, const float *x, const float *w, const float *b, int M, int d, float eps) {
#pragma omp parallel for schedule(static) PAR_IF((long)M * d * 6)
  for (int m = 0; m < M; m++) {
    const float *xm = x + (long)m * d;
    float *ym = y + (long)m * d;
    float s = 0.f;
    for (int i = 0; i < d; i++) s += xm[i];
    const float mu = s / d;
    float ss = 0.f;
    for (int i = 0; i < d; i++) ss += (xm[i] - mu) * (xm[i] - mu);
    const float rm = 1.f / sqrtf(ss / d + eps);
    mean[m] = mu, r[m] = rm;
    for (int i = 0; i < d; i++) {
      float v = (xm[i] - mu) * rm;
      if (w) v *= w[i];
      if (b) v += b[i];
      ym[i] = v;
    }
  }
}

void layernorm_backward(float *dx, const float *dy, const float *x, const float *mean, const float *r, const float *w, int M, int d) {
#pragma omp parallel for schedule(static) PAR_IF((long)M * d * 10)
  for (int m = 0; m < M; m++) {
    const float *xm = x + (long)m * d, *dym = dy + (long)m * d;
    const float mu = mean[m], rm = r[m];
    float sdn = 0.f, sdnn = 0.f; // Σ dn, Σ dn·n
    for (int i = 0; i < d; i++) {
      const float dn = w ? dym[i] * w[i] : dym[i];
      sdn += dn;
      sdnn += dn * (xm[i] - mu) * rm;
    }
    const float a = sdn / d, c = sdnn / d;
    for (int i = 0; i < d; i++) {
      const float dn = w ? dym[i] * w[i] : dym[i];
      dx[(long)m * d + i] += rm * (dn - a - (xm[i] - mu) * rm * c);
    }
  }
}

// ---- RoPE (rotate-half): y[j] = x[j]c - x[j+h]s, y[j+h] = x[j+h]c + x[j]s

void rope_tables(float *cos_t, float *sin_t, const float *inv_freq, int T, int half) {
  for (int t = 0; t < T; t++)
    for (int j = 0; j < half; j++) {
      const float angle = (float)t * inv_freq[j];
      cos_t[(long)t * half + j] = (float)cos((double)angle);
      sin_t[(long)t * half + j] = (float)sin((double)angle);
    }
}

void rope(float *x, const float *cos_t, const float *sin_t, int B, int T, int H, int D, int pos0) {
  const int h = D / 2;
#pragma omp parallel for collapse(2) schedule(static) PAR_IF((long)B * T * H * D * 3)
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const float *c = cos_t + (long)(t + pos0) * h, *s = sin_t + (long)(t + pos0) * h;
      for (int hd = 0; hd < H; hd++) {
        float *v = x + (((long)b * T + t) * H + hd) * D;
        for (int j = 0; j < h; j++) {
          const float a = v[j], e = v[j + h];
          v[j] = a * c[j] - e * s[j];
          v[j + h] = e * c[j] + a * s[j];
        }
      }
    }
}

void rope_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int H, int D) {
  const int h = D / 2;
#pragma omp parallel for collapse(2) schedule(static) PAR_IF((long)B * T * H * D * 3)
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const float *c = cos_t + (long)t * h, *s = sin_t + (long)t * h;
      for (int hd = 0; hd < H; hd++) {
        float *v = dx + (((long)b * T + t) * H + hd) * D;
        for (int j = 0; j < h; j++) {
          const float a = v[j], e = v[j + h];
          v[j] = a * c[j] + e * s[j];
          v[j + h] = e * c[j] - a * s[j];
        }
      }
    }
}

void rope_partial(float *x, const float *cos_t, const float *sin_t, int B, int T, int H, int D, int rot, int pos0) {
  const int h = rot / 2;
#pragma omp parallel for collapse(2) schedule(static) PAR_IF((long)B * T * H * rot * 3)
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const float *c = cos_t + (long)(t + pos0) * h, *s = sin_t + (long)(t + pos0) * h;
      for (int hd = 0; hd < H; hd++) {
        float *v = x + (((long)b * T + t) * H + hd) * D;
        for (int j = 0; j < h; j++) {
          const float a = v[j], e = v[j + h];
          v[j] = a * c[j] - e * s[j];
          v[j + h] = e * c[j] + a * s[j];
        }
      }
    }
}

void rope_partial_backward(float *dx, const float *cos_t, const float *sin_t, int B, int T, int H, int D, int rot) {
  const int h = rot / 2;
#pragma omp parallel for collapse(2) schedule(static) PAR_IF((long)B * T * H * rot * 3)
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const float *c = cos_t + (long)t * h, *s = sin_t + (long)t * h;
      for (int hd = 0; hd < H; hd++) {
        float *v = dx + (((long)b * T + t) * H + hd) * D;
        for (int j = 0; j < h; j++) {
          const float a = v[j], e = v[j + h];
          v[j] = a * c[j] + e * s[j];
          v[j + h] = e * c[j] - a * s[j];
        }
      }
    }
}

// ---- causal attention with grouped-query heads: query head hq reads kv head hq / (Hq/Hkv)

// 8 partial sums in a fixed order: vectorises without -ffast-math and stays deterministic.
static inline float dot(const float *a, const float *b, int n) {
  float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
  int i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; k++) acc[k] += a[i + k] * b[i + k];
  float s = ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
  for (; i < n; i++) s += a[i] * b[i];
  return s;
}

void attention(float *o, float *lse, const float *q, const float *k, const float *v, int B, int T, int Hq, int Hkv, int D) {
  const int rep = Hq / Hkv;
  const float scale = 1.f / sqrtf((float)D);
#pragma omp parallel PAR_IF((long)B * Hq * T * T * D * 2)
  {
    float *p = (float *)malloc(sizeof(float) * T);
#pragma omp for collapse(2) schedule(dynamic, 1)
    for (int b = 0; b < B; b++)
      for (int hq = 0; hq < Hq; hq++) {
        const int g = hq / rep;
        for (int i = 0; i < T; i++) {
          const float *qi = q + (((long)b * T + i) * Hq + hq) * D;
          float mx = -INFINITY;
          for (int j = 0; j <= i; j++) {
            p[j] = dot(qi, k + (((long)b * T + j) * Hkv + g) * D, D) * scale;
            if (p[j] > mx) mx = p[j];
          }
          float sum = 0.f;
          for (int j = 0; j <= i; j++) sum += (p[j] = expf(p[j] - mx));
          const float inv = 1.f / sum;
          float *oi = o + (((long)b * T + i) * Hq + hq) * D;
          for (int e = 0; e < D; e++) oi[e] = 0.f;
          for (int j = 0; j <= i; j++) {
            const float pj = p[j] * inv;
            const float *vj = v + (((long)b * T + j) * Hkv + g) * D;
            for (int e = 0; e < D; e++) oi[e] += pj * vj[e];
          }
          lse[((long)b * Hq + hq) * T + i] = mx + logf(sum);
        }
      }
    free(p);
  }
}

// p_ij = exp(s_ij - lse_i); dp_ij = do_i·v_j; ds_ij = p_ij (dp_ij - do_i·o_i);
// dq_i = scale Σ_j ds_ij k_j; dk_j += scale ds_ij q_i; dv_j += p_ij do_i.
// One task per (b, kv head): the rep query heads that share dk/dv run in the same task, race-free.
void attention_backward(float *dq, float *dk, float *dv, const float *dout, const float *o, const float *lse,
                        const float *q, const float *k, const float *v, int B, int T, int Hq, int Hkv, int D) {
  const int rep = Hq / Hkv;
  const float scale = 1.f / sqrtf((float)D);
#pragma omp parallel for collapse(2) schedule(dynamic, 1) PAR_IF((long)B * Hq * T * T * D * 4)
  for (int b = 0; b < B; b++)
    for (int g = 0; g < Hkv; g++) {
      for (int t = 0; t < T; t++) {
        memset(dk + (((long)b * T + t) * Hkv + g) * D, 0, sizeof(float) * D);
        memset(dv + (((long)b * T + t) * Hkv + g) * D, 0, sizeof(float) * D);
      }
      for (int hq = g * rep; hq < (g + 1) * rep; hq++)
        for (int i = 0; i < T; i++) {
          const long qi_off = (((long)b * T + i) * Hq + hq) * D;
          const float *qi = q + qi_off, *doi = dout + qi_off;
          float *dqi = dq + qi_off;
          const float l = lse[((long)b * Hq + hq) * T + i];
          const float delta = dot(doi, o + qi_off, D);
          for (int e = 0; e < D; e++) dqi[e] = 0.f;
          for (int j = 0; j <= i; j++) {
            const long kj_off = (((long)b * T + j) * Hkv + g) * D;
            const float *kj = k + kj_off, *vj = v + kj_off;
            const float p = expf(dot(qi, kj, D) * scale - l);
            const float ds = p * (dot(doi, vj, D) - delta) * scale;
            float *dkj = dk + kj_off, *dvj = dv + kj_off;
            for (int e = 0; e < D; e++) {
              dqi[e] += ds * kj[e];
              dkj[e] += ds * qi[e];
              dvj[e] += p * doi[e];
            }
          }
        }
    }
}

void attention_cached(float *o, const float *q, const float *K, const float *V, int n, int p0, int Hq, int Hkv, int D) {
  const int rep = Hq / Hkv;
  const long qd = (long)Hq * D, kvd = (long)Hkv * D;
  const float scale = 1.f / sqrtf((float)D);
#pragma omp parallel for collapse(2) schedule(dynamic, 1) if ((long)n * Hq * (p0 + n) * D > (1L << 16))
  for (int t = 0; t < n; t++)
    for (int hq = 0; hq < Hq; hq++) {
      const int pos = p0 + t, gk = hq / rep;
      const float *qi = q + t * qd + hq * D;
      float *oi = o + t * qd + hq * D;
      float mx = -INFINITY, sum = 0.f;
      float *p = (float *)malloc(sizeof(float) * (pos + 1));
      for (int j = 0; j <= pos; j++) {
        float s = 0.f;
        const float *kj = K + j * kvd + gk * D;
        for (int e = 0; e < D; e++) s += qi[e] * kj[e];
        p[j] = s * scale;
        if (p[j] > mx) mx = p[j];
      }
      for (int j = 0; j <= pos; j++) sum += (p[j] = expf(p[j] - mx));
      const float inv = 1.f / sum;
      for (int e = 0; e < D; e++) oi[e] = 0.f;
      for (int j = 0; j <= pos; j++) {
        const float pj = p[j] * inv;
        const float *vj = V + j * kvd + gk * D;
        for (int e = 0; e < D; e++) oi[e] += pj * vj[e];
      }
      free(p);
    }
}

void add_inplace(float *y, const float *x, long n) {
#pragma omp parallel for schedule(static) if (n > (1L << 16))
  for (long i = 0; i < n; i++) y[i] += x[i];
}

// ---- SwiGLU

void swiglu(float *act, const float *g, const float *u, long n) {
#pragma omp parallel for schedule(static) PAR_IF(n * 16)
  for (long i = 0; i < n; i++) {
    const float sg = 1.f / (1.f + expf(-g[i]));
    act[i] = g[i] * sg * u[i];
  }
}

void swiglu_backward(float *dg, float *du, const float *dact, const float *g, const float *u, long n) {
#pragma omp parallel for schedule(static) PAR_IF(n * 16)
  for (long i = 0; i < n; i++) {
    const float sg = 1.f / (1.f + expf(-g[i]));
    const float silu = g[i] * sg;
    du[i] = dact[i] * silu;
    dg[i] = dact[i] * u[i] * sg * (1.f + g[i] * (1.f - sg)); // silu' = σ(1 + g(1-σ))
  }
}

// ---- GELU (erf), ReLU, clamp, learned positions

void gelu(float *y, const float *x, long n) {
#pragma omp parallel for schedule(static) PAR_IF(n * 16)
  for (long i = 0; i < n; i++) y[i] = (x[i] * 0.5f) * (1.f + erff(x[i] * 0.70710678118654752f));
}

void gelu_backward(float *dx, const float *dy, const float *x, long n) {
  const float inv_sqrt_2pi = 0.3989422804014327f;
#pragma omp parallel for schedule(static) PAR_IF(n * 16)
  for (long i = 0; i < n; i++) {
    const float cdf = 0.5f * (1.f + erff(x[i] * 0.70710678118654752f));
    const float pdf = expf(-0.5f * x[i] * x[i]) * inv_sqrt_2pi;
    dx[i] = dy[i] * (cdf + x[i] * pdf);
  }
}

void relu(float *y, const float *x, long n) {
#pragma omp parallel for schedule(static) PAR_IF(n * 4)
  for (long i = 0; i < n; i++) y[i] = x[i] > 0.f ? x[i] : 0.f;
}

void relu_backward(float *dx, const float *dy, const float *x, long n) {
#pragma omp parallel for schedule(static) PAR_IF(n * 4)
  for (long i = 0; i < n; i++) dx[i] = x[i] > 0.f ? dy[i] : 0.f;
}

void clamp(float *x, unsigned char *pass, long n, float c) {
#pragma omp parallel for schedule(static) PAR_IF(n * 4)
  for (long i = 0; i < n; i++) {
    pass[i] = x[i] >= -c && x[i] <= c;
    x[i] = x[i] < -c ? -c : x[i] > c ? c : x[i];
  }
}

void clamp_backward(float *dx, const unsigned char *pass, long n) {
#pragma omp parallel for schedule(static) PAR_IF(n * 4)
  for (long i = 0; i < n; i++)
    if (!pass[i]) dx[i] = 0.f;
}

void add_positions(float *h, const float *table, int B, int T, int d, int row0) {
#pragma omp parallel for collapse(2) schedule(static) PAR_IF((long)B * T * d)
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      float *hr = h + ((long)b * T + t) * d;
      const float *pr = table + (long)(row0 + t) * d;
      for (int i = 0; i < d; i++) hr[i] += pr[i];
    }
}

// ---- softmax cross-entropy + argmax over the vocabulary

static inline float exp_vec(float x);

// e_i = exp(z_i - max) once per logit, vectorised (exp_vec, 1 ulp of expf), kept in dlogits; their sum in
// float64 over 8 fixed lanes (the same bits whatever the threads); dlogits = e·(w/Σe) - w·onehot.
// (Two scalar double exps per logit were ~7% of a SmolLM2 B=1 step.)
void cross_entropy(float *ce, int *hit, float *dlogits, const float *logits, const int *target, const float *weight, int M, int V) {
#pragma omp parallel for schedule(static) PAR_IF((long)M * V * 4)
  for (int m = 0; m < M; m++) {
    const float *z = logits + (long)m * V;
    int am = 0;
    float mx = z[0];
    for (int i = 1; i < V; i++)
      if (z[i] > mx) mx = z[i], am = i;
    if (mx != mx) am = -1; // NaN logits: never a hit
    double lane[8] = {0.0};
    int i = 0;
    if (dlogits) {
      float *e = dlogits + (long)m * V;
      for (int j = 0; j < V; j++) e[j] = exp_vec(z[j] - mx);
      for (; i + 8 <= V; i += 8)
        for (int l = 0; l < 8; l++) lane[l] += e[i + l];
      for (; i < V; i++) lane[0] += e[i];
    } else {
      for (; i + 8 <= V; i += 8)
        for (int l = 0; l < 8; l++) lane[l] += exp_vec(z[i + l] - mx);
      for (; i < V; i++) lane[0] += exp_vec(z[i] - mx);
    }
    const double sum = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
    const double lse = (double)mx + log(sum);
    ce[m] = (float)(lse - (double)z[target[m]]);
    hit[m] = am == target[m];
    if (dlogits) {
      float *dz = dlogits + (long)m * V;
      const float w = weight[m], scale = (float)(w / sum);
      for (int j = 0; j < V; j++) dz[j] *= scale;
      dz[target[m]] -= w;
    }
  }
}

// ---- Mamba kernels (mamba.c): softplus, silu, the depthwise causal conv and the sequential selective scan

static inline float sigmoidf_(float x) { return 1.f / (1.f + expf(-x)); }

void softplus(float *y, const float *x, long n) {
  for (long i = 0; i < n; i++) y[i] = x[i] > 20.f ? x[i] : log1pf(expf(x[i])); // torch's threshold 20
}

void softplus_backward(float *dx, const float *dy, const float *x, long n) {
  for (long i = 0; i < n; i++) dx[i] = x[i] > 20.f ? dy[i] : dy[i] * sigmoidf_(x[i]);
}

void silu(float *y, const float *x, long n) {
  for (long i = 0; i < n; i++) y[i] = x[i] * sigmoidf_(x[i]);
}

void silu_backward(float *dx, const float *dy, const float *x, long n) {
  for (long i = 0; i < n; i++) {
    const float s = sigmoidf_(x[i]);
    dx[i] = dy[i] * s * (1.f + x[i] * (1.f - s));
  }
}

void conv1d_causal(float *y, const float *x, const float *w, const float *b, int B, int T, int C, int K) {
  for (int bb = 0; bb < B; bb++)
    for (int t = 0; t < T; t++) {
      float *yr = y + ((long)bb * T + t) * C;
      for (int c = 0; c < C; c++) yr[c] = b ? b[c] : 0.f;
      for (int j = 0; j < K; j++) {
        const int s = t - (K - 1) + j; // the input step tap j reads
        if (s < 0) continue;
        const float *xr = x + ((long)bb * T + s) * C;
        for (int c = 0; c < C; c++) yr[c] += w[(long)c * K + j] * xr[c];
      }
    }
}

void conv1d_causal_backward(float *dx, const float *dy, const float *w, int B, int T, int C, int K) {
  memset(dx, 0, sizeof(float) * B * T * C);
  for (int bb = 0; bb < B; bb++)
    for (int t = 0; t < T; t++) {
      const float *dyr = dy + ((long)bb * T + t) * C;
      for (int j = 0; j < K; j++) {
        const int s = t - (K - 1) + j;
        if (s < 0) continue;
        float *dxr = dx + ((long)bb * T + s) * C;
        for (int c = 0; c < C; c++) dxr[c] += w[(long)c * K + j] * dyr[c];
      }
    }
}

// exp(x) in plain float arithmetic the compiler vectorises (glibc's expf is scalar without -ffast-math): the
// scan's decays exp(Δ·A) are most of its work. Cody-Waite reduction x = k·ln2 + r, Cephes' degree-6
// polynomial for exp(r), 2^k from the exponent bits: ≤ 1.2e-7 relative to expf on [-87.3, 88.4] (1 ulp);
// 0 below (expf gives denormals there, < 1.2e-38), inf above, NaN in → NaN out.
static inline float exp_vec(float x) {
  const float hi = 88.3762626647949f, lo = -87.33654475f;
  float xc = x > hi ? hi : x;
  xc = xc < lo ? lo : xc;
  const float k = __builtin_rintf(xc * 1.44269504088896341f);
  float r = xc - k * 0.693359375f;
  r = r - k * -2.12194440e-4f;
  float p = 1.9875691500E-4f;
  p = p * r + 1.3981999507E-3f;
  p = p * r + 8.3334519073E-3f;
  p = p * r + 4.1665795894E-2f;
  p = p * r + 1.6666665459E-1f;
  p = p * r + 5.0000001201E-1f;
  p = p * r * r + r + 1.f;
  const int32_t bits = ((int32_t)k + 127) << 23;
  float s;
  memcpy(&s, &bits, sizeof s);
  const float y = p * s;
  return x < lo ? 0.f : x > hi ? __builtin_inff() : x != x ? x : y;
}

// One step of one channel: a[n] = exp(Δ·A[n]) (kept when a is not NULL: the backward's decays),
// h[n] = a[n]·h[n] + Δ·B[n]·x; returns Σ_n C[n]·h[n] (summed in order n = 0..N-1). The forward, the
// backward's recomputation and the decode all step through here: one set of roundings.
static inline float scan_step(float *h, float *a, const float *Ai, const float *Bt, const float *Ct, float dt, float xv, int N) {
  float av[N];
  float *ap = a ? a : av;
#pragma omp simd
  for (int n = 0; n < N; n++) {
    ap[n] = exp_vec(dt * Ai[n]);
    h[n] = ap[n] * h[n] + dt * Bt[n] * xv;
  }
  float acc = 0.f;
  for (int n = 0; n < N; n++) acc += h[n] * Ct[n];
  return acc;
}

// One (batch row, channel) per iteration; the state h[N] stays in L1. The state at the end of every chunk of
// SCAN_CHUNK steps goes to hs [B, chunks, nI, N]: the backward recomputes the states inside a chunk from it.
long selective_scan_states(int B, int T, int nI, int N) { return (long)B * ((T + SCAN_CHUNK - 1) / SCAN_CHUNK) * nI * N; }

void selective_scan(float *y, float *hs, const float *delta, const float *A, const float *Bm, int ldb, const float *Cm, int ldc,
                    const float *x, const float *D, int B, int T, int nI, int N) {
  const int nC = (T + SCAN_CHUNK - 1) / SCAN_CHUNK;
#pragma omp parallel for schedule(static) PAR_IF((long)B * T * nI * N * 8)
  for (long bi = 0; bi < (long)B * nI; bi++) {
    const int b = (int)(bi / nI), i = (int)(bi % nI);
    const float *Ai = A + (long)i * N;
    float h[N];
    for (int n = 0; n < N; n++) h[n] = 0.f;
    for (int t = 0; t < T; t++) {
      const long row = (long)b * T + t;
      const float xv = x[row * nI + i];
      y[row * nI + i] = scan_step(h, NULL, Ai, Bm + row * ldb, Cm + row * ldc, delta[row * nI + i], xv, N) + D[i] * xv;
      if (t % SCAN_CHUNK == SCAN_CHUNK - 1 || t == T - 1) memcpy(hs + (((long)b * nC + t / SCAN_CHUNK) * nI + i) * N, h, sizeof(float) * N);
    }
  }
}

void selective_scan_step(float *y, float *h, const float *delta, const float *A, const float *Bm, const float *Cm, const float *x,
                         const float *D, int nI, int N) {
  for (int i = 0; i < nI; i++) y[i] = scan_step(h + (long)i * N, NULL, A + (long)i * N, Bm, Cm, delta[i], x[i], N) + D[i] * x[i];
}

// The channels of a batch row split into a fixed number of groups (a function of nI alone, not of the thread
// count: the same sums whatever the threads); each group adds its channels' dB, dC terms into its own slice
// of the scratch, then the slices are summed in group order.
static int scan_groups(int nI) {
  const int g = (nI + 63) / 64;
  return g < 16 ? g : 16;
}

long selective_scan_backward_scratch(int B, int T, int nI, int N) {
  const int G = scan_groups(nI);
  return G > 1 ? (long)B * G * T * 2 * N : 0;
}

// Walks time backwards with g = dL/dh_t: g = dy_t·C_t + exp(Δ_{t+1}A)·g_{t+1}, a chunk at a time (its states
// and decays recomputed from the end state of the chunk before). Work items are (batch row, channel group).
void selective_scan_backward(float *ddelta, float *dx, float *dB, int ldb, float *dC, int ldc, const float *dy, const float *hs,
                             const float *delta, const float *A, const float *Bm, const float *Cm, const float *x, const float *D,
                             float *scratch, int B, int T, int nI, int N) {
  const int nC = (T + SCAN_CHUNK - 1) / SCAN_CHUNK, G = scan_groups(nI), per = (nI + G - 1) / G;
  for (int b = 0; b < B; b++)
    for (int t = 0; t < T; t++) {
      const long row = (long)b * T + t;
      for (int n = 0; n < N; n++) dB[row * ldb + n] = 0.f, dC[row * ldc + n] = 0.f;
    }
  if (G > 1) memset(scratch, 0, sizeof(float) * selective_scan_backward_scratch(B, T, nI, N));
#pragma omp parallel for schedule(dynamic, 1) PAR_IF((long)B * T * nI * N * 12)
  for (long bg = 0; bg < (long)B * G; bg++) {
    const int b = (int)(bg / G), grp = (int)(bg % G), i0 = grp * per, i1 = i0 + per < nI ? i0 + per : nI;
    // this item's dB, dC rows: the outputs themselves (one group) or its scratch slice [T, 2N]
    float *gB = G > 1 ? scratch + (long)bg * T * 2 * N : dB + (long)b * T * ldb;
    float *gC = G > 1 ? gB + N : dC + (long)b * T * ldc;
    const long sB = G > 1 ? 2 * N : ldb, sC = G > 1 ? 2 * N : ldc;
    float g[N], hc[SCAN_CHUNK + 1][N], ac[SCAN_CHUNK][N]; // hc[k] = h at step t0 + k - 1 (hc[0]: entering the chunk); ac: decays
    for (int i = i0; i < i1; i++) {
      const float *Ai = A + (long)i * N;
      for (int n = 0; n < N; n++) g[n] = 0.f;
      for (int c = nC - 1; c >= 0; c--) {
        const int t0 = c * SCAN_CHUNK, t1 = t0 + SCAN_CHUNK < T ? t0 + SCAN_CHUNK : T;
        for (int n = 0; n < N; n++) hc[0][n] = c > 0 ? hs[(((long)b * nC + c - 1) * nI + i) * N + n] : 0.f;
        for (int t = t0; t < t1; t++) { // the chunk's states again, as the forward made them
          const long row = (long)b * T + t;
          memcpy(hc[t - t0 + 1], hc[t - t0], sizeof(float) * N);
          scan_step(hc[t - t0 + 1], ac[t - t0], Ai, Bm + row * ldb, Cm + row * ldc, delta[row * nI + i], x[row * nI + i], N);
        }
        for (int t = t1 - 1; t >= t0; t--) {
          const long row = (long)b * T + t, lt = t;
          const float dt = delta[row * nI + i], xv = x[row * nI + i], dyv = dy[row * nI + i];
          const float *Bt = Bm + row * ldb, *Ct = Cm + row * ldc, *ht = hc[t - t0 + 1], *hp = hc[t - t0], *at = ac[t - t0];
          float *dBt = gB + lt * sB, *dCt = gC + lt * sC;
          float ddt = 0.f, dxv = dyv * D[i];
          for (int n = 0; n < N; n++) {
            dCt[n] += dyv * ht[n];
            g[n] += dyv * Ct[n];                              // dL/dh_t
            ddt += g[n] * (hp[n] * at[n] * Ai[n] + Bt[n] * xv); // h_t = a·h_{t-1} + Δ·B·x, da/dΔ = a·A
            dBt[n] += g[n] * dt * xv;
            dxv += g[n] * dt * Bt[n];
            g[n] *= at[n];                                    // → dL/dh_{t-1} (its own dy term added next step)
          }
          ddelta[row * nI + i] = ddt;
          dx[row * nI + i] += dxv;
        }
      }
    }
  }
  if (G > 1) {
#pragma omp parallel for schedule(static) PAR_IF((long)B * T * G * N * 2)
    for (long row = 0; row < (long)B * T; row++) {
      const int b = (int)(row / T), t = (int)(row % T);
      for (int grp = 0; grp < G; grp++) {
        const float *sl = scratch + ((long)(b * G + grp) * T + t) * 2 * N;
        for (int n = 0; n < N; n++) dB[row * ldb + n] += sl[n], dC[row * ldc + n] += sl[N + n];
      }
    }
  }
}
