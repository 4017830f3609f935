/* Fused per-sample rank-1 masked linear layer of DWA and its mask losses (docs/original-code.md#masked-layers-and-mask-generation),
   float32, CPU.

   Sample b uses the weight W ⊙ H_b with H_b[o,k] = gate(u[b,o] v[b,k]) (out x in = O x I).
   The (B, O, I) mask is never stored: every entry is generated, used and dropped inside one loop,
   in the forward and again in the backward. Every function handles the output rows
   o_begin <= o < o_end (the caller runs row ranges on several threads), then the samples b, then
   the input index k, which the compiler vectorises (`omp simd`, no OpenMP runtime needed): one row
   of W and of dW stays in L1 while the samples stream through.

   Layer, forward : y[b,o] = Σ_k W[o,k] H x[b,k]                 abs_rows[b,o] = Σ_k |H|
                    optionally, with f (O, I): relu_rows[b,o] = Σ_k f[o,k] relu(H) (paper Eq. 5's
                    plasticity term, fused so that H is generated once for the layer and the term)
          backward: with gy (B,O), gs (B,), gr (B,) the gradients of y, of s_b = Σ_o abs_rows[b,o]
                    and of r_b = Σ_o relu_rows[b,o] (gr only with f),
                    G = gate'(z) (W[o,k] gy[b,o] x[b,k] + gs[b] sign(H) + gr[b] f[o,k] [H > 0]),
                    z = u[b,o] v[b,k]
                    dW[o,k] = Σ_b H gy[b,o] x[b,k]   dx[b,k] = Σ_o W[o,k] H gy[b,o]
                    du[b,o] = Σ_k G v[b,k]           dv[b,k] = Σ_o G u[b,o]
   Fisher (DWA's per-sample Fisher of W, functional/fisher.py), with x2 = x², g2 = gy²:
                    F[o,k] += Σ_b H² g2[b,o] x2[b,k];  if gx is given, gx[b,k] += Σ_o W[o,k] H gy[b,o]
                    (H_b ⊙ gy_b x_bᵀ is sample b's gradient of W, F sums its square; gx is dx)
   Mask losses, forward : rows[b,o] = Σ_k w[o,k] φ(H),  φ = |.| or relu; w's row o at w + o w_stride
                backward: D = gs[b] w[o,k] φ'(H) gate'(z);  du[b,o] = Σ_k D v[b,k],  dv[b,k] = Σ_o D u[b,o]
   dx and dv sum over rows, so a row range adds into its own (B, I) arrays (zeroed here: dW's rows
   and the partials are written in the pass that uses them, not by the caller beforehand),
   which the caller sums over the ranges. The caller cuts the rows into a fixed number of ranges,
   whatever the number of threads, so the results do not depend on it.

   tanh and sigmoid are written with plain arithmetic (a degree-7 polynomial after range reduction)
   so that the compiler vectorises them without a vector math library; relative error about 2e-7
   (a few float ulps), and 1 - H², the gradient's factor, stays accurate in saturation, where the
   masks sit (a rational approximation of tanh within 1e-6 was tried and dropped: its 1 - H² was
   biased by up to +35 % for |z| in 6..8, which changed DWA's results). Built with
   -ffinite-math-only (needed for the vectorised fmaxf): inputs are assumed finite. */

#include <math.h>
#include <stdint.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

enum { GATE_TANH = 0, GATE_SIGMOID = 1 };

/* e^x = 2^n e^r for x <= 0, with x = n ln2 + r, |r| <= ln2 / 2: *q = e^r - 1 by its Taylor
   polynomial (degree 7), *scale = 2^n from the exponent bits. */
INLINE void exp_parts(float x, float *scale, float *q) {
    x = fmaxf(x, -87.0f);
    int32_t n = (int32_t)(x * 1.44269504088896341f - 0.5f);  /* round(x / ln2): truncation of a value <= 0 */
    float r = x - (float)n * 0.693145751953125f - (float)n * 1.428606765330187e-6f;
    float p = 1.0f / 5040;
    p = p * r + 1.0f / 720;
    p = p * r + 1.0f / 120;
    p = p * r + 1.0f / 24;
    p = p * r + 1.0f / 6;
    p = p * r + 0.5f;
    p = p * r + 1.0f;
    *q = p * r;
    union { int32_t i; float f; } bits = {(n + 127) << 23};
    *scale = bits.f;
}

INLINE float exp_nonpos(float x) {
    float scale, q;
    exp_parts(x, &scale, &q);
    return scale * q + scale;
}

/* e^x - 1 = 2^n q + (2^n - 1): accurate near 0, where n = 0. */
INLINE float expm1_nonpos(float x) {
    float scale, q;
    exp_parts(x, &scale, &q);
    return scale * q + (scale - 1.0f);
}

/* tanh(z) = sign(z) (-m) / (2 + m) with m = e^{-2|z|} - 1 in (-1, 0]: no cancellation anywhere. */
INLINE float tanh_f(float z) {
    float m = expm1_nonpos(-2.0f * fabsf(z));
    return copysignf(-m / (2.0f + m), z);
}

/* sigmoid(z) with e = e^{-|z|} <= 1: 1 / (1 + e) for z >= 0, e / (1 + e) below. */
INLINE float sigmoid_f(float z) {
    float e = exp_nonpos(-fabsf(z)), q = 1.0f / (1.0f + e);
    return z >= 0.0f ? q : e * q;
}

enum { PHI_ABS = 0, PHI_RELU = 1 };

INLINE float gate_f(int gate, float z) { return gate == GATE_TANH ? tanh_f(z) : sigmoid_f(z); }

/* gate'(z) written with h = gate(z) */
INLINE float gate_grad(int gate, float h) { return gate == GATE_TANH ? 1.0f - h * h : h * (1.0f - h); }

/* sign(H) = sign(z) for tanh, 1 for sigmoid (H > 0) */
INLINE float gate_sign(int gate, float z) {
    return gate == GATE_TANH ? (float)(z > 0.0f) - (float)(z < 0.0f) : 1.0f;
}

/* φ'(H): sign(H) for |.|, [H > 0] = [z > 0] (tanh) or 1 (sigmoid) for relu */
INLINE float phi_grad(int gate, int kind, float z) {
    return kind == PHI_ABS ? gate_sign(gate, z) : (gate == GATE_TANH ? (float)(z > 0.0f) : 1.0f);
}

INLINE float phi_f(int kind, float h) { return kind == PHI_ABS ? fabsf(h) : fmaxf(h, 0.0f); }

/* The row functions below are called with literal gate and kind (through DISPATCH) so that, once
   inlined, their loops have no branches and vectorise. */
#define DISPATCH(gate, kind, CALL)                                                                 \
    ((gate) == GATE_TANH ? ((kind) == PHI_ABS ? CALL(GATE_TANH, PHI_ABS) : CALL(GATE_TANH, PHI_RELU)) \
                         : ((kind) == PHI_ABS ? CALL(GATE_SIGMOID, PHI_ABS) : CALL(GATE_SIGMOID, PHI_RELU)))

/* y[b,o] for one (b, o); *abs_sum = Σ_k |H|, and with WEIGHTED *relu_sum = Σ_k f[k] relu(H) (the
   plasticity term of one row, fused here so that H is generated once for both) */
INLINE float linear_row(int gate, int weighted, int64_t I, float c, const float *w, const float *xb,
                        const float *vb, const float *f, float *abs_sum, float *relu_sum) {
    float acc = 0.0f, abs_acc = 0.0f, relu_acc = 0.0f;
    #pragma omp simd reduction(+ : acc, abs_acc, relu_acc)
    for (int64_t k = 0; k < I; ++k) {
        float h = gate_f(gate, c * vb[k]);
        acc += w[k] * h * xb[k];
        abs_acc += fabsf(h);
        if (weighted)
            relu_acc += f[k] * fmaxf(h, 0.0f);
    }
    *abs_sum = abs_acc;
    if (weighted)
        *relu_sum = relu_acc;
    return acc;
}

/* One (b, o) of the layer's backward: adds into dW's row, dx_b and dv_b; returns du[b,o]. With
   WEIGHTED, r is the gradient of relu_sum_b and G gains r f[k] relu'(H). */
INLINE float linear_row_backward(int gate, int weighted, int64_t I, float c, float g, float s, float r,
                                 const float *w, const float *xb, const float *vb, const float *f,
                                 float *gw, float *gxb, float *gvb) {
    float gu_acc = 0.0f;
    #pragma omp simd reduction(+ : gu_acc)
    for (int64_t k = 0; k < I; ++k) {
        float z = c * vb[k], h = gate_f(gate, z), gx = g * xb[k];
        float inner = w[k] * gx + s * gate_sign(gate, z);
        if (weighted)
            inner += r * f[k] * phi_grad(gate, PHI_RELU, z);
        float G = gate_grad(gate, h) * inner;
        gw[k] += h * gx;
        gxb[k] += w[k] * h * g;
        gu_acc += G * vb[k];
        gvb[k] += G * c;
    }
    return gu_acc;
}

/* One (b, o) of the Fisher: adds H² g2 x2 into F's row and, when gxb is not NULL, W H g into dx_b.
   No reduction over k, so the vector width does not change the result: simdlen(16) lets the
   compiler use 512-bit vectors where the CPU has them. */
INLINE void fisher_row(int gate, int64_t I, float c, float g, float g2, const float *w, const float *x2b,
                       const float *vb, float *fo, float *gxb) {
    if (gxb == 0) {
        #pragma omp simd simdlen(16)
        for (int64_t k = 0; k < I; ++k) {
            float h = gate_f(gate, c * vb[k]);
            fo[k] += h * h * g2 * x2b[k];
        }
        return;
    }
    #pragma omp simd simdlen(16)
    for (int64_t k = 0; k < I; ++k) {
        float h = gate_f(gate, c * vb[k]);
        fo[k] += h * h * g2 * x2b[k];
        gxb[k] += w[k] * h * g;
    }
}

INLINE float sum_row(int gate, int kind, int64_t I, float c, const float *wo, const float *vb) {
    float acc = 0.0f;
    #pragma omp simd reduction(+ : acc)
    for (int64_t k = 0; k < I; ++k)
        acc += wo[k] * phi_f(kind, gate_f(gate, c * vb[k]));
    return acc;
}

INLINE float sum_row_backward(int gate, int kind, int64_t I, float c, float g, const float *wo,
                              const float *vb, float *gvb) {
    float gu_acc = 0.0f;
    #pragma omp simd reduction(+ : gu_acc)
    for (int64_t k = 0; k < I; ++k) {
        float z = c * vb[k], h = gate_f(gate, z);
        float D = g * wo[k] * gate_grad(gate, h) * phi_grad(gate, kind, z);
        gu_acc += D * vb[k];
        gvb[k] += D * c;
    }
    return gu_acc;
}

/* Both layer functions take f (O, I) and its outputs (relu_rows, gr) or NULL: the plasticity term
   Σ f relu(H) computed alongside the layer, or not. */
#define DISPATCH_W(gate, weighted, CALL)                                                              \
    ((gate) == GATE_TANH ? ((weighted) ? CALL(GATE_TANH, 1) : CALL(GATE_TANH, 0))                     \
                         : ((weighted) ? CALL(GATE_SIGMOID, 1) : CALL(GATE_SIGMOID, 0)))

void rank_one_forward(int64_t B, int64_t O, int64_t I, int64_t o_begin, int64_t o_end, const float *x,
                      const float *W, const float *u, const float *v, int gate, float *y, float *abs_rows,
                      const float *f, float *relu_rows) {
    const int weighted = f != 0;
    float unused = 0.0f;
    for (int64_t o = o_begin; o < o_end; ++o)
        for (int64_t b = 0; b < B; ++b) {
            const float c = u[b * O + o], *w = W + o * I, *xb = x + b * I, *vb = v + b * I;
            const float *fo = weighted ? f + o * I : 0;
            float *abs_sum = abs_rows + b * O + o, *relu_sum = weighted ? relu_rows + b * O + o : &unused;
#define CALL(G, WT) linear_row(G, WT, I, c, w, xb, vb, fo, abs_sum, relu_sum)
            y[b * O + o] = DISPATCH_W(gate, weighted, CALL);
#undef CALL
        }
}

void rank_one_backward(int64_t B, int64_t O, int64_t I, int64_t o_begin, int64_t o_end, const float *x,
                       const float *W, const float *u, const float *v, const float *gy, const float *gs,
                       int gate, float *gW, float *gu, float *gx, float *gv, const float *f, const float *gr) {
    const int weighted = f != 0;
    memset(gx, 0, sizeof(float) * B * I);  /* this range's own partials */
    memset(gv, 0, sizeof(float) * B * I);
    for (int64_t o = o_begin; o < o_end; ++o) {
        memset(gW + o * I, 0, sizeof(float) * I);  /* zeroed here, while the row is about to be used */
        for (int64_t b = 0; b < B; ++b) {
            const float c = u[b * O + o], g = gy[b * O + o], s = gs[b], r = weighted ? gr[b] : 0.0f;
            const float *w = W + o * I, *xb = x + b * I, *vb = v + b * I, *fo = weighted ? f + o * I : 0;
            float *gw = gW + o * I, *gxb = gx + b * I, *gvb = gv + b * I;
#define CALL(G, WT) linear_row_backward(G, WT, I, c, g, s, r, w, xb, vb, fo, gw, gxb, gvb)
            gu[b * O + o] = DISPATCH_W(gate, weighted, CALL);
#undef CALL
        }
    }
}

void rank_one_sum_forward(int64_t B, int64_t O, int64_t I, int64_t o_begin, int64_t o_end, const float *u,
                          const float *v, const float *w, int64_t w_stride, int gate, int kind, float *rows) {
    for (int64_t o = o_begin; o < o_end; ++o)
        for (int64_t b = 0; b < B; ++b) {
            const float c = u[b * O + o], *wo = w + o * w_stride, *vb = v + b * I;
#define CALL(G, K) sum_row(G, K, I, c, wo, vb)
            rows[b * O + o] = DISPATCH(gate, kind, CALL);
#undef CALL
        }
}

void rank_one_sum_backward(int64_t B, int64_t O, int64_t I, int64_t o_begin, int64_t o_end, const float *u,
                           const float *v, const float *w, int64_t w_stride, int gate, int kind,
                           const float *gs, float *gu, float *gv) {
    memset(gv, 0, sizeof(float) * B * I);  /* this range's own partial */
    for (int64_t o = o_begin; o < o_end; ++o)
        for (int64_t b = 0; b < B; ++b) {
            const float c = u[b * O + o], *wo = w + o * w_stride, *vb = v + b * I;
            float *gvb = gv + b * I;
#define CALL(G, K) sum_row_backward(G, K, I, c, gs[b], wo, vb, gvb)
            gu[b * O + o] = DISPATCH(gate, kind, CALL);
#undef CALL
        }
}

/* gx (B, I) may be NULL (then W is not read): the Fisher alone. */
void rank_one_fisher(int64_t B, int64_t O, int64_t I, int64_t o_begin, int64_t o_end, const float *x2,
                     const float *W, const float *u, const float *v, const float *gy, int gate, float *F,
                     float *gx) {
    if (gx != 0)
        memset(gx, 0, sizeof(float) * B * I);  /* this range's own partial */
    for (int64_t o = o_begin; o < o_end; ++o)
        for (int64_t b = 0; b < B; ++b) {
            const float c = u[b * O + o], g = gy[b * O + o];
            if (g == 0.0f)  /* a ReLU that is off: the row adds exactly 0 (about half the rows) */
                continue;
            const float *w = W == 0 ? 0 : W + o * I, *x2b = x2 + b * I, *vb = v + b * I;
            float *gxb = gx == 0 ? 0 : gx + b * I;
#define CALL(G, K) (fisher_row(G, I, c, g, g * g, w, x2b, vb, F + o * I, gxb), 0.0f)
            (void)DISPATCH(gate, PHI_ABS, CALL);
#undef CALL
        }
}

/* Range runners: each calls one function above for the row ranges [bounds[i], bounds[i+1]),
   first <= i < first + count, on `threads` threads. Built with -fopenmp they run on the OpenMP
   runtime PyTorch has already loaded (its libgomp.so.1, found by soname), so PyTorch's intra-op
   threads and these are one team, not two pools competing for the cores; built without, they run
   their ranges one after the other, and the caller spreads single ranges over a thread pool of its
   own (kernels/__init__.py). A range that sums over rows (dx, dv) writes its own partial array, at
   base + i * partial_stride: the caller adds the ranges' partials in a fixed order, so the results
   depend neither on the number of threads nor on which thread ran which range. */
#define OVER_RANGES(CALL)                                                                          \
    (void)threads;                                                                                 \
    _Pragma("omp parallel for num_threads(threads) schedule(dynamic, 1)")                          \
    for (int64_t i = first; i < first + count; ++i) {                                              \
        const int64_t o_begin = bounds[i], o_end = bounds[i + 1];                                   \
        CALL;                                                                                       \
    }
#define RANGES int64_t first, int64_t count, const int64_t *bounds, int threads

int rank_one_parallel(void) {
#ifdef _OPENMP
    return 1;
#else
    return 0;
#endif
}

void rank_one_forward_ranges(RANGES, int64_t B, int64_t O, int64_t I, const float *x, const float *W,
                             const float *u, const float *v, int gate, float *y, float *abs_rows, const float *f,
                             float *relu_rows) {
    OVER_RANGES(rank_one_forward(B, O, I, o_begin, o_end, x, W, u, v, gate, y, abs_rows, f, relu_rows))
}

void rank_one_backward_ranges(RANGES, int64_t partial_stride, int64_t B, int64_t O, int64_t I, const float *x,
                              const float *W, const float *u, const float *v, const float *gy, const float *gs,
                              int gate, float *gW, float *gu, float *gx, float *gv, const float *f,
                              const float *gr) {
    OVER_RANGES(rank_one_backward(B, O, I, o_begin, o_end, x, W, u, v, gy, gs, gate, gW, gu,
                                  gx + i * partial_stride, gv + i * partial_stride, f, gr))
}

void rank_one_fisher_ranges(RANGES, int64_t partial_stride, int64_t B, int64_t O, int64_t I, const float *x2,
                            const float *W, const float *u, const float *v, const float *gy, int gate, float *F,
                            float *gx) {
    OVER_RANGES(rank_one_fisher(B, O, I, o_begin, o_end, x2, W, u, v, gy, gate, F,
                                gx == 0 ? 0 : gx + i * partial_stride))
}

void rank_one_sum_forward_ranges(RANGES, int64_t B, int64_t O, int64_t I, const float *u, const float *v,
                                 const float *w, int64_t w_stride, int gate, int kind, float *rows) {
    OVER_RANGES(rank_one_sum_forward(B, O, I, o_begin, o_end, u, v, w, w_stride, gate, kind, rows))
}

void rank_one_sum_backward_ranges(RANGES, int64_t partial_stride, int64_t B, int64_t O, int64_t I,
                                  const float *u, const float *v, const float *w, int64_t w_stride, int gate,
                                  int kind, const float *gs, float *gu, float *gv) {
    OVER_RANGES(rank_one_sum_backward(B, O, I, o_begin, o_end, u, v, w, w_stride, gate, kind, gs, gu,
                                      gv + i * partial_stride))
}

/* The backward of a full mask's two loss statistics (models/masked.py, _FullMaskTerms): for the
   samples o_begin <= b < o_end of H (B, n), dH = sign(H) gs[b] + [H > 0] gr[b] f, with either term
   left out when its gradient (gs or gr) is NULL. Written as PyTorch's autograd writes it (the
   product gr[b] f rounded, then the sum), without contracting it into a fused multiply-add, so the
   bits are autograd's. */
#if defined(__clang__)
#define NO_CONTRACT
#else
#define NO_CONTRACT __attribute__((optimize("fp-contract=off")))
#endif
static NO_CONTRACT void mask_terms_rows(int64_t n, int64_t b_begin, int64_t b_end, const float *h, const float *f,
                                        const float *gs, const float *gr, float *dh) {
#if defined(__clang__)
#pragma clang fp contract(off)
#endif
    for (int64_t b = b_begin; b < b_end; ++b) {
        const float *hb = h + b * n;
        float *d = dh + b * n;
        if (gs != 0 && gr != 0) {
            const float s = gs[b], r = gr[b];
            #pragma omp simd
            for (int64_t i = 0; i < n; ++i)
                d[i] = ((float)(hb[i] > 0.0f) - (float)(hb[i] < 0.0f)) * s + (hb[i] > 0.0f ? r * f[i] : 0.0f);
        } else if (gs != 0) {
            const float s = gs[b];
            #pragma omp simd
            for (int64_t i = 0; i < n; ++i)
                d[i] = ((float)(hb[i] > 0.0f) - (float)(hb[i] < 0.0f)) * s;
        } else {
            const float r = gr[b];
            #pragma omp simd
            for (int64_t i = 0; i < n; ++i)
                d[i] = hb[i] > 0.0f ? r * f[i] : 0.0f;
        }
    }
}

/* Rows here are samples: o_begin <= b < o_end. */
void mask_terms_backward_ranges(RANGES, int64_t n, const float *h, const float *f, const float *gs,
                                const float *gr, float *dh) {
    OVER_RANGES(mask_terms_rows(n, o_begin, o_end, h, f, gs, gr, dh))
}

/* Full masks under numerics 4 (models/masked.py: _FullTanh, _FullMaskProduct). H (B, n) is a full
   mask (a conv layer's, n = out·in·k·k), W and f (n) the layer's weight and the plasticity term's
   Fisher (or NULL).
   Tanh gate, forward : H = tanh(Z) (tanh_f above)        backward: dZ = dH (1 - H²)
   Product, forward : WH[b,i] = W[i] H[b,i],  abs_sum[b] = Σ_i |H[b,i]|,  relu_sum[b] = Σ_i f[i] relu(H[b,i])
           backward : dH[b,i] = gWH[b,i] W[i] + gs[b] sign(H[b,i]) + gr[b] f[i] [H[b,i] > 0]
                      dW[i] = Σ_b gWH[b,i] H[b,i], summed over b in order
   The gate and the product's forward take sample ranges; the product's backward takes ranges of
   the index i (each range sums dW over every sample), so no result depends on the thread count. */
static void full_tanh_rows(int64_t n, int64_t b_begin, int64_t b_end, const float *z, float *h) {
    #pragma omp simd
    for (int64_t i = b_begin * n; i < b_end * n; ++i)
        h[i] = tanh_f(z[i]);
}

static void full_tanh_backward_rows(int64_t n, int64_t b_begin, int64_t b_end, const float *h,
                                    const float *dh, float *dz) {
    #pragma omp simd
    for (int64_t i = b_begin * n; i < b_end * n; ++i)
        dz[i] = dh[i] * (1.0f - h[i] * h[i]);
}

static void full_product_rows(int64_t n, int64_t b_begin, int64_t b_end, const float *h, const float *w,
                              const float *f, float *wh, float *abs_sum, float *relu_sum) {
    for (int64_t b = b_begin; b < b_end; ++b) {
        const float *hb = h + b * n;
        float *whb = wh + b * n, abs_acc = 0.0f, relu_acc = 0.0f;
        if (f == 0) {
            #pragma omp simd reduction(+ : abs_acc)
            for (int64_t i = 0; i < n; ++i) {
                whb[i] = w[i] * hb[i];
                abs_acc += fabsf(hb[i]);
            }
        } else {
            #pragma omp simd reduction(+ : abs_acc, relu_acc)
            for (int64_t i = 0; i < n; ++i) {
                whb[i] = w[i] * hb[i];
                abs_acc += fabsf(hb[i]);
                relu_acc += f[i] * fmaxf(hb[i], 0.0f);
            }
        }
        abs_sum[b] = abs_acc;
        if (f != 0)
            relu_sum[b] = relu_acc;
    }
}

/* INCLUDE_GS / INCLUDE_GR: literal flags, so that each variant's loop has no branches */
INLINE void full_product_backward_row(int include_gs, int include_gr, int64_t i_begin, int64_t i_end,
                                      const float *hb, const float *w, const float *f, const float *gwhb,
                                      float s, float r, float *dhb, float *dw) {
    #pragma omp simd
    for (int64_t i = i_begin; i < i_end; ++i) {
        const float hv = hb[i], g = gwhb[i];
        float d = g * w[i];
        if (include_gs)
            d += s * ((float)(hv > 0.0f) - (float)(hv < 0.0f));
        if (include_gr)
            d += hv > 0.0f ? r * f[i] : 0.0f;
        dhb[i] = d;
        dw[i] += g * hv;
    }
}

static void full_product_backward_cols(int64_t B, int64_t n, int64_t i_begin, int64_t i_end, const float *h,
                                       const float *w, const float *f, const float *gwh, const float *gs,
                                       const float *gr, float *dh, float *dw) {
    for (int64_t i = i_begin; i < i_end; ++i)
        dw[i] = 0.0f;
    const int with_r = gr != 0 && f != 0;
    for (int64_t b = 0; b < B; ++b) {
        const float s = gs == 0 ? 0.0f : gs[b], r = with_r ? gr[b] : 0.0f;
        const float *hb = h + b * n, *gwhb = gwh + b * n;
        float *dhb = dh + b * n;
        if (gs != 0 && with_r)
            full_product_backward_row(1, 1, i_begin, i_end, hb, w, f, gwhb, s, r, dhb, dw);
        else if (gs != 0)
            full_product_backward_row(1, 0, i_begin, i_end, hb, w, f, gwhb, s, r, dhb, dw);
        else if (with_r)
            full_product_backward_row(0, 1, i_begin, i_end, hb, w, f, gwhb, s, r, dhb, dw);
        else
            full_product_backward_row(0, 0, i_begin, i_end, hb, w, f, gwhb, s, r, dhb, dw);
    }
}

/* Rows are samples for these three */
void full_tanh_ranges(RANGES, int64_t n, const float *z, float *h) {
    OVER_RANGES(full_tanh_rows(n, o_begin, o_end, z, h))
}

void full_tanh_backward_ranges(RANGES, int64_t n, const float *h, const float *dh, float *dz) {
    OVER_RANGES(full_tanh_backward_rows(n, o_begin, o_end, h, dh, dz))
}

void full_product_ranges(RANGES, int64_t n, const float *h, const float *w, const float *f, float *wh,
                         float *abs_sum, float *relu_sum) {
    OVER_RANGES(full_product_rows(n, o_begin, o_end, h, w, f, wh, abs_sum, relu_sum))
}

/* and ranges of the index i for this one */
void full_product_backward_ranges(RANGES, int64_t B, int64_t n, const float *h, const float *w, const float *f,
                                  const float *gwh, const float *gs, const float *gr, float *dh, float *dw) {
    OVER_RANGES(full_product_backward_cols(B, n, o_begin, o_end, h, w, f, gwh, gs, gr, dh, dw))
}
