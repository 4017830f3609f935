/* Fused per-sample rank-1 masked linear layer of DWA (seed_spec §5.2-5.3), float32, CPU.

   Sample b uses the weight W ⊙ H_b with H_b[o,k] = gate(u[b,o] v[b,k]) (out x in = O x I).
   The (B, O, I) mask is never stored: every entry is generated, used and dropped inside one loop,
   in the forward and again in the backward. Loops run over output rows o (split among threads),
   then samples b, then the input index k, which the compiler vectorises (`omp simd`): one row of
   W and of dW stays in L1 while the samples stream through.

   forward : y[b,o] = Σ_k W[o,k] H_b[o,k] x[b,k]          abs_rows[b,o] = Σ_k |H_b[o,k]|
   backward: with gy (B,O) and gs (B,) the gradients of y and of s_b = Σ_o abs_rows[b,o],
             G[b,o,k] = gate'(z) (W[o,k] gy[b,o] x[b,k] + gs[b] sign(H)),  z = u[b,o] v[b,k]
             dW[o,k] = Σ_b H gy[b,o] x[b,k]   dx[b,k] = Σ_o W H gy[b,o]
             du[b,o] = Σ_k G v[b,k]           dv[b,k] = Σ_o G u[b,o]
   dx and dv are summed over rows, so each thread adds into its own (B, I) slices of `scratch`
   (threads x 2 x B x I, zeroed by the caller); the caller sums them over threads.

   tanh and sigmoid are written with plain arithmetic (a degree-7 polynomial after range reduction)
   so that the compiler vectorises them without a vector math library; relative error about 2e-7
   (a few float ulps). Built with -ffinite-math-only (needed for the vectorised fmaxf): inputs are
   assumed finite. */

#include <math.h>
#include <stdint.h>
#ifdef _OPENMP
#include <omp.h>
#endif

enum { GATE_TANH = 0, GATE_SIGMOID = 1 };

/* e^x = 2^n e^r for x <= 0, with x = n ln2 + r, |r| <= ln2 / 2: *q = e^r - 1 by its Taylor
   polynomial (degree 7), *scale = 2^n from the exponent bits. */
static inline void exp_parts(float x, float *scale, float *q) {
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

static inline float exp_nonpos(float x) {
    float scale, q;
    exp_parts(x, &scale, &q);
    return scale * q + scale;
}

/* e^x - 1 = 2^n q + (2^n - 1): accurate near 0, where n = 0. */
static inline float expm1_nonpos(float x) {
    float scale, q;
    exp_parts(x, &scale, &q);
    return scale * q + (scale - 1.0f);
}

/* tanh(z) = sign(z) (-m) / (2 + m) with m = e^{-2|z|} - 1 in (-1, 0]: no cancellation anywhere. */
static inline float tanh_f(float z) {
    float m = expm1_nonpos(-2.0f * fabsf(z));
    return copysignf(-m / (2.0f + m), z);
}

/* sigmoid(z) with e = e^{-|z|} <= 1: 1 / (1 + e) for z >= 0, e / (1 + e) below. */
static inline float sigmoid_f(float z) {
    float e = exp_nonpos(-fabsf(z)), q = 1.0f / (1.0f + e);
    return z >= 0.0f ? q : e * q;
}

void rank_one_forward(int64_t B, int64_t O, int64_t I, const float *x, const float *W, const float *u,
                      const float *v, int gate, float *y, float *abs_rows, int threads) {
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t o = 0; o < O; ++o) {
        const float *w = W + o * I;
        for (int64_t b = 0; b < B; ++b) {
            const float *xb = x + b * I, *vb = v + b * I;
            const float c = u[b * O + o];
            float acc = 0.0f, abs_acc = 0.0f;
            if (gate == GATE_TANH) {
                #pragma omp simd reduction(+ : acc, abs_acc)
                for (int64_t k = 0; k < I; ++k) {
                    float h = tanh_f(c * vb[k]);
                    acc += w[k] * h * xb[k];
                    abs_acc += fabsf(h);
                }
            } else {
                #pragma omp simd reduction(+ : acc, abs_acc)
                for (int64_t k = 0; k < I; ++k) {
                    float h = sigmoid_f(c * vb[k]);
                    acc += w[k] * h * xb[k];
                    abs_acc += h;
                }
            }
            y[b * O + o] = acc;
            abs_rows[b * O + o] = abs_acc;
        }
    }
}

void rank_one_backward(int64_t B, int64_t O, int64_t I, const float *x, const float *W, const float *u,
                       const float *v, const float *gy, const float *gs, int gate, float *gW, float *gu,
                       float *scratch, int threads) {
    #pragma omp parallel num_threads(threads)
    {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        float *gx_t = scratch + (int64_t)t * 2 * B * I, *gv_t = gx_t + B * I;
        #pragma omp for schedule(static)
        for (int64_t o = 0; o < O; ++o) {
            const float *w = W + o * I;
            float *gw = gW + o * I;
            for (int64_t b = 0; b < B; ++b) {
                const float *xb = x + b * I, *vb = v + b * I;
                float *gxb = gx_t + b * I, *gvb = gv_t + b * I;
                const float c = u[b * O + o], g = gy[b * O + o], s = gs[b];
                float gu_acc = 0.0f;
                if (gate == GATE_TANH) {
                    #pragma omp simd reduction(+ : gu_acc)
                    for (int64_t k = 0; k < I; ++k) {
                        float z = c * vb[k], h = tanh_f(z);
                        float sign = (float)(z > 0.0f) - (float)(z < 0.0f);
                        float gx = g * xb[k], wh = w[k] * h;
                        float G = (1.0f - h * h) * (w[k] * gx + s * sign);
                        gw[k] += h * gx;
                        gxb[k] += wh * g;
                        gu_acc += G * vb[k];
                        gvb[k] += G * c;
                    }
                } else {
                    #pragma omp simd reduction(+ : gu_acc)
                    for (int64_t k = 0; k < I; ++k) {
                        float h = sigmoid_f(c * vb[k]);
                        float gx = g * xb[k];
                        float G = h * (1.0f - h) * (w[k] * gx + s);
                        gw[k] += h * gx;
                        gxb[k] += w[k] * h * g;
                        gu_acc += G * vb[k];
                        gvb[k] += G * c;
                    }
                }
                gu[b * O + o] = gu_acc;
            }
        }
    }
}

/* The mask losses' reduction (dwa_core/functional/dwa_masks.py), H_b = gate(u_b v_bᵀ) of shape O x I:
   rows[b,o] = Σ_k w[o,k] φ(H_b[o,k]),  φ = |.| (kind 0) or relu (kind 1); row o of w starts at
   w + o * w_stride (w_stride 0 with a row of ones: no weights). Backward, with gs (B,) the gradient of
   s_b = Σ_o rows[b,o] and D = gs[b] w φ'(H) gate'(z):  du[b,o] = Σ_k D v[b,k],  dv[b,k] = Σ_o D u[b,o]
   (dv per thread in scratch, threads x B x I, zeroed by the caller). */
enum { PHI_ABS = 0, PHI_RELU = 1 };

static inline float phi_f(int kind, float h) { return kind == PHI_ABS ? fabsf(h) : fmaxf(h, 0.0f); }

/* One row of the forward / backward for a given gate and φ. Called with literal gate and kind
   (see the switches below) so that, once inlined, the loop has no branches and vectorises. */
static inline __attribute__((always_inline)) float sum_row(int gate, int kind, int64_t I, float c,
                                                           const float *vb, const float *wo) {
    float acc = 0.0f;
    #pragma omp simd reduction(+ : acc)
    for (int64_t k = 0; k < I; ++k) {
        float z = c * vb[k];
        acc += wo[k] * phi_f(kind, gate == GATE_TANH ? tanh_f(z) : sigmoid_f(z));
    }
    return acc;
}

static inline __attribute__((always_inline)) float sum_row_backward(int gate, int kind, int64_t I, float c,
                                                                    float g, const float *vb,
                                                                    const float *wo, float *gvb) {
    float gu_acc = 0.0f;
    #pragma omp simd reduction(+ : gu_acc)
    for (int64_t k = 0; k < I; ++k) {
        float z = c * vb[k];
        float h = gate == GATE_TANH ? tanh_f(z) : sigmoid_f(z);
        float dgate = gate == GATE_TANH ? 1.0f - h * h : h * (1.0f - h);
        /* φ'(H): sign(H) = sign(z) (tanh) or 1 (sigmoid); [H > 0] = [z > 0] (tanh) or 1 (sigmoid) */
        float up = gate == GATE_TANH ? (float)(z > 0.0f) : 1.0f;
        float down = gate == GATE_TANH && kind == PHI_ABS ? (float)(z < 0.0f) : 0.0f;
        float D = g * wo[k] * dgate * (up - down);
        gu_acc += D * vb[k];
        gvb[k] += D * c;
    }
    return gu_acc;
}

#define DISPATCH(gate, kind, CALL)                                                         \
    ((gate) == GATE_TANH ? ((kind) == PHI_ABS ? CALL(GATE_TANH, PHI_ABS) : CALL(GATE_TANH, PHI_RELU)) \
                         : ((kind) == PHI_ABS ? CALL(GATE_SIGMOID, PHI_ABS) : CALL(GATE_SIGMOID, PHI_RELU)))

void rank_one_sum_forward(int64_t B, int64_t O, int64_t I, const float *u, const float *v, const float *w,
                          int64_t w_stride, int gate, int kind, float *rows, int threads) {
    #pragma omp parallel for num_threads(threads) schedule(static)
    for (int64_t o = 0; o < O; ++o) {
        const float *wo = w + o * w_stride;
        for (int64_t b = 0; b < B; ++b) {
            const float c = u[b * O + o], *vb = v + b * I;
#define CALL(G, K) sum_row(G, K, I, c, vb, wo)
            rows[b * O + o] = DISPATCH(gate, kind, CALL);
#undef CALL
        }
    }
}

void rank_one_sum_backward(int64_t B, int64_t O, int64_t I, const float *u, const float *v, const float *w,
                           int64_t w_stride, int gate, int kind, const float *gs, float *gu, float *scratch,
                           int threads) {
    #pragma omp parallel num_threads(threads)
    {
        int t = 0;
#ifdef _OPENMP
        t = omp_get_thread_num();
#endif
        float *gv_t = scratch + (int64_t)t * B * I;
        #pragma omp for schedule(static)
        for (int64_t o = 0; o < O; ++o) {
            const float *wo = w + o * w_stride;
            for (int64_t b = 0; b < B; ++b) {
                const float c = u[b * O + o], *vb = v + b * I;
                float *gvb = gv_t + b * I;
#define CALL(G, K) sum_row_backward(G, K, I, c, gs[b], vb, wo, gvb)
                gu[b * O + o] = DISPATCH(gate, kind, CALL);
#undef CALL
            }
        }
    }
}
