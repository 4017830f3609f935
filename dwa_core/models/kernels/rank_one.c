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
   biased by up to +35 % for |z| in 6..8, which changed DWA's results). Numerics 5 (GATE_TANH_EXP2)
   computes the same formula for tanh through 2^x with a degree-5 polynomial (about a fifth fewer
   operations, relative error below 2.5e-7, the same 1 - H² in saturation), and the layer's forward
   and backward take four output rows per pass over a sample (linear_rows4 below). Built with
   -ffinite-math-only (needed for the vectorised fmaxf): inputs are assumed finite. */

#include <math.h>
#include <stdint.h>
#include <string.h>

#define INLINE static inline __attribute__((always_inline))

enum { GATE_TANH = 0, GATE_SIGMOID = 1, GATE_TANH_EXP2 = 2 };  /* GATE_TANH_EXP2: tanh under numerics 5 */

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

/* -tanh(|z|) = m / (2 + m) <= 0: tanh_f's formula with m = e^{-2|z|} - 1 = 2^n (2^f - 1) + (2^n - 1),
   where -2|z| log2(e) = n + f, n = round(.) (read from the bits of the sum with 1.5 2^23, which
   rounds it) and |f| <= 1/2: 2^f - 1 = f P(f), P of degree 5 fitted for least maximum relative error
   on [-1/2, 1/2] (Lawson's iteration; 1.1e-8). One multiplication folds the range reduction's 2 and
   log2(e), and the polynomial is two degrees shorter than exp_parts': tanh in about a fifth fewer
   operations, relative error below 2.5e-7, 1 - H² as tanh_f's in saturation (tests/test_kernels.py).
   The layer's forward sums |H| as -tanh_exp2_neg: one subtraction instead of a mask and an addition. */
INLINE float tanh_exp2_neg(float z) {
    const float y = fmaxf(-2.88539008177792681f * fabsf(z), -126.0f);  /* -2 log2(e) |z| */
    const float rounder = 12582912.0f;                                   /* 1.5 2^23 */
    const float t = y + rounder, n = t - rounder, f = y - n;
    float p = 1.5403504949063063e-4f;
    p = p * f + 1.3390734093263745e-3f;
    p = p * f + 9.618237614631653e-3f;
    p = p * f + 5.550357326865196e-2f;
    p = p * f + 2.4022649228572845e-1f;
    p = p * f + 6.931471824645996e-1f;
    union { float f; int32_t i; } rounded = {t};
    union { int32_t i; float f; } bits = {(rounded.i - 0x4B400000 + 127) << 23};  /* 2^n */
    const float m = bits.f * (p * f) + (bits.f - 1.0f);
    return m / (2.0f + m);
}

/* tanh(z) = sign(z) |tanh_exp2_neg(z)|: copysignf takes the magnitude, the negation goes away. */
INLINE float tanh_exp2(float z) { return copysignf(tanh_exp2_neg(z), z); }

enum { PHI_ABS = 0, PHI_RELU = 1 };

INLINE float gate_f(int gate, float z) {
    return gate == GATE_TANH ? tanh_f(z) : gate == GATE_TANH_EXP2 ? tanh_exp2(z) : sigmoid_f(z);
}

/* gate'(z) written with h = gate(z) */
INLINE float gate_grad(int gate, float h) { return gate != GATE_SIGMOID ? 1.0f - h * h : h * (1.0f - h); }

/* sign(H) = sign(z) for tanh, 1 for sigmoid (H > 0) */
INLINE float gate_sign(int gate, float z) {
    return gate != GATE_SIGMOID ? (float)(z > 0.0f) - (float)(z < 0.0f) : 1.0f;
}

/* φ'(H): sign(H) for |.|, [H > 0] = [z > 0] (tanh) or 1 (sigmoid) for relu */
INLINE float phi_grad(int gate, int kind, float z) {
    return kind == PHI_ABS ? gate_sign(gate, z) : (gate != GATE_SIGMOID ? (float)(z > 0.0f) : 1.0f);
}

INLINE float phi_f(int kind, float h) { return kind == PHI_ABS ? fabsf(h) : fmaxf(h, 0.0f); }

/* The row functions below are called with literal gate and kind (through DISPATCH) so that, once
   inlined, their loops have no branches and vectorise. */
#define DISPATCH_KIND(G, kind, CALL) ((kind) == PHI_ABS ? CALL(G, PHI_ABS) : CALL(G, PHI_RELU))
#define DISPATCH(gate, kind, CALL)                                                                 \
    ((gate) == GATE_TANH ? DISPATCH_KIND(GATE_TANH, kind, CALL)                                    \
     : (gate) == GATE_TANH_EXP2 ? DISPATCH_KIND(GATE_TANH_EXP2, kind, CALL)                        \
                                : DISPATCH_KIND(GATE_SIGMOID, kind, CALL))

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

/* Four rows of the Fisher (any four: F + rows[j] I) for one sample b in one pass, so that the
   sample's x² and v are read once for four rows. Each entry's sum over samples and each dx entry's
   sum over rows keep fisher_row's order (dx adds the four rows' terms one after the other, in row
   order), so the bits are fisher_row's. */
#define FISHER_TERM(j) const float h##j = gate_f(gate, c[j] * vk); f##j[k] += h##j * h##j * g2[j] * x2k;
#define FISHER_DX(j) w##j[k] * h##j * g[j]
INLINE void fisher_rows4(int gate, int64_t I, const int64_t *rows, const float *c, const float *g,
                         const float *g2, const float *W, const float *x2b, const float *vb, float *F,
                         float *gxb) {
    float *f0 = F + rows[0] * I, *f1 = F + rows[1] * I, *f2 = F + rows[2] * I, *f3 = F + rows[3] * I;
    if (gxb == 0) {
        #pragma omp simd simdlen(16)
        for (int64_t k = 0; k < I; ++k) {
            const float x2k = x2b[k], vk = vb[k];
            FISHER_TERM(0) FISHER_TERM(1) FISHER_TERM(2) FISHER_TERM(3)
        }
        return;
    }
    const float *w0 = W + rows[0] * I, *w1 = W + rows[1] * I, *w2 = W + rows[2] * I, *w3 = W + rows[3] * I;
    #pragma omp simd simdlen(16)
    for (int64_t k = 0; k < I; ++k) {
        const float x2k = x2b[k], vk = vb[k];
        FISHER_TERM(0) FISHER_TERM(1) FISHER_TERM(2) FISHER_TERM(3)
        gxb[k] = gxb[k] + FISHER_DX(0) + FISHER_DX(1) + FISHER_DX(2) + FISHER_DX(3);
    }
}
#undef FISHER_TERM
#undef FISHER_DX

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

/* Numerics 5: the layer's forward and backward for four output rows o..o+3 of one sample b at once
   (w, f: row o, the next rows I further on; c = u[b, o..o+3], g = gy[b, o..o+3]). The sample's x and
   v, and in the backward its dx and dv, are then read and written once for four rows instead of once
   per row (the sample's dx and dv live in L2, not L1, at the paper's sizes). Each row sums as the
   one-row functions do; dx and dv add the four rows' terms pairwise before adding them in, so their
   bits differ from numerics 3's. */
#define ROW_PTRS(p, base, n) const float *p##0 = (base), *p##1 = (n) ? (base) + I : 0, \
    *p##2 = (n) ? (base) + 2 * I : 0, *p##3 = (n) ? (base) + 3 * I : 0
#define FORWARD_TERM(j)                                                                               \
    {                                                                                                 \
        const float z = c##j * vk, neg = tanh_exp2_neg(z), h = copysignf(neg, z);                    \
        y##j += w##j[k] * h * xk;                                                                     \
        s##j -= neg; /* s + |h|, the same bits: |h| = -neg, and s - x is s + (-x) */                 \
        if (weighted)                                                                                 \
            r##j += f##j[k] * fmaxf(h, 0.0f);                                                         \
    }

INLINE void linear_rows4(int weighted, int64_t I, const float *c, const float *w, const float *xb,
                         const float *vb, const float *f, float *y, float *abs_sum, float *relu_sum) {
    const float c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3];
    ROW_PTRS(w, w, 1);
    ROW_PTRS(f, f, weighted);
    float y0 = 0.0f, y1 = 0.0f, y2 = 0.0f, y3 = 0.0f, s0 = 0.0f, s1 = 0.0f, s2 = 0.0f, s3 = 0.0f;
    float r0 = 0.0f, r1 = 0.0f, r2 = 0.0f, r3 = 0.0f;
    #pragma omp simd reduction(+ : y0, y1, y2, y3, s0, s1, s2, s3, r0, r1, r2, r3)
    for (int64_t k = 0; k < I; ++k) {
        const float xk = xb[k], vk = vb[k];
        FORWARD_TERM(0) FORWARD_TERM(1) FORWARD_TERM(2) FORWARD_TERM(3)
    }
    y[0] = y0, y[1] = y1, y[2] = y2, y[3] = y3;
    abs_sum[0] = s0, abs_sum[1] = s1, abs_sum[2] = s2, abs_sum[3] = s3;
    if (weighted)
        relu_sum[0] = r0, relu_sum[1] = r1, relu_sum[2] = r2, relu_sum[3] = r3;
}

#define BACKWARD_TERM(j)                                                                              \
    const float z##j = c##j * vk, h##j = tanh_exp2(z##j), gx##j = g##j * xk;                          \
    const float pos##j = weighted ? s + r * f##j[k] : s;                                              \
    const float terms##j = z##j > 0.0f ? pos##j : (z##j < 0.0f ? -s : 0.0f);                          \
    const float G##j = (1.0f - h##j * h##j) * (w##j[k] * gx##j + terms##j);                           \
    gw##j[k] += h##j * gx##j;                                                                         \
    a##j += G##j * vk;

/* The backward of linear_rows4 over k_begin <= k < k_end (the caller cuts I into chunks, so that the
   four rows of W, f and dW stay in L1 while the samples pass); adds the chunk's du into gu[0..3]. */
INLINE void linear_rows4_backward(int weighted, int64_t I, int64_t k_begin, int64_t k_end, const float *c,
                                  const float *g, float s, float r, const float *w, const float *xb,
                                  const float *vb, const float *f, float *gw, float *gxb, float *gvb,
                                  float *gu) {
    const float c0 = c[0], c1 = c[1], c2 = c[2], c3 = c[3], g0 = g[0], g1 = g[1], g2 = g[2], g3 = g[3];
    ROW_PTRS(w, w, 1);
    ROW_PTRS(f, f, weighted);
    float *gw0 = gw, *gw1 = gw + I, *gw2 = gw + 2 * I, *gw3 = gw + 3 * I;
    float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
    #pragma omp simd reduction(+ : a0, a1, a2, a3)
    for (int64_t k = k_begin; k < k_end; ++k) {
        const float xk = xb[k], vk = vb[k];
        BACKWARD_TERM(0) BACKWARD_TERM(1) BACKWARD_TERM(2) BACKWARD_TERM(3)
        gxb[k] += (w0[k] * h0 * g0 + w1[k] * h1 * g1) + (w2[k] * h2 * g2 + w3[k] * h3 * g3);
        gvb[k] += (G0 * c0 + G1 * c1) + (G2 * c2 + G3 * c3);
    }
    gu[0] += a0, gu[1] += a1, gu[2] += a2, gu[3] += a3;
}
#define ROWS4_CHUNK 1024  /* entries of k per backward pass: 4 rows x 3 arrays x 4 KB in L1 */

/* Both layer functions take f (O, I) and its outputs (relu_rows, gr) or NULL: the plasticity term
   Σ f relu(H) computed alongside the layer, or not. */
#define DISPATCH_W(gate, weighted, CALL) DISPATCH(gate, (weighted) ? PHI_RELU : PHI_ABS, CALL)

void rank_one_forward(int64_t B, int64_t O, int64_t I, int64_t o_begin, int64_t o_end, const float *x,
                      const float *W, const float *u, const float *v, int gate, float *y, float *abs_rows,
                      const float *f, float *relu_rows) {
    const int weighted = f != 0;
    float unused[4] = {0.0f};
    if (gate == GATE_TANH_EXP2)  /* numerics 5: four rows at a time, then the rows left one by one */
        for (; o_begin + 4 <= o_end; o_begin += 4)
            for (int64_t b = 0; b < B; ++b) {
                const int64_t at = b * O + o_begin;
                if (weighted)
                    linear_rows4(1, I, u + at, W + o_begin * I, x + b * I, v + b * I, f + o_begin * I, y + at,
                                 abs_rows + at, relu_rows + at);
                else
                    linear_rows4(0, I, u + at, W + o_begin * I, x + b * I, v + b * I, 0, y + at,
                                 abs_rows + at, unused);
            }
    for (int64_t o = o_begin; o < o_end; ++o)
        for (int64_t b = 0; b < B; ++b) {
            const float c = u[b * O + o], *w = W + o * I, *xb = x + b * I, *vb = v + b * I;
            const float *fo = weighted ? f + o * I : 0;
            float *abs_sum = abs_rows + b * O + o, *relu_sum = weighted ? relu_rows + b * O + o : unused;
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
    if (gate == GATE_TANH_EXP2)  /* numerics 5: four rows at a time, then the rows left one by one */
        for (; o_begin + 4 <= o_end; o_begin += 4) {
            memset(gW + o_begin * I, 0, sizeof(float) * 4 * I);
            for (int64_t b = 0; b < B; ++b)
                memset(gu + b * O + o_begin, 0, sizeof(float) * 4);
            for (int64_t k0 = 0; k0 < I; k0 += ROWS4_CHUNK) {
                const int64_t k1 = k0 + ROWS4_CHUNK < I ? k0 + ROWS4_CHUNK : I;
                for (int64_t b = 0; b < B; ++b) {
                    const int64_t at = b * O + o_begin;
                    const float s = gs[b], r = weighted ? gr[b] : 0.0f;
                    float *gxb = gx + b * I, *gvb = gv + b * I;
                    if (weighted)
                        linear_rows4_backward(1, I, k0, k1, u + at, gy + at, s, r, W + o_begin * I, x + b * I,
                                              v + b * I, f + o_begin * I, gW + o_begin * I, gxb, gvb, gu + at);
                    else
                        linear_rows4_backward(0, I, k0, k1, u + at, gy + at, s, r, W + o_begin * I, x + b * I,
                                              v + b * I, 0, gW + o_begin * I, gxb, gvb, gu + at);
                }
            }
        }
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
#define FISHER_BLOCK 32
void rank_one_fisher(int64_t B, int64_t O, int64_t I, int64_t o_begin, int64_t o_end, const float *x2,
                     const float *W, const float *u, const float *v, const float *gy, int gate, float *F,
                     float *gx) {
    if (gx != 0)
        memset(gx, 0, sizeof(float) * B * I);  /* this range's own partial */
    /* Blocks of FISHER_BLOCK rows (their F and W rows stay in L2 while the samples pass); in each,
       a sample's active rows four at a time, then the rest one by one. A row whose gy is 0 (a ReLU
       that is off, about half of them) adds exactly 0 and is skipped. */
    for (int64_t block = o_begin; block < o_end; block += FISHER_BLOCK) {
        const int64_t block_end = block + FISHER_BLOCK < o_end ? block + FISHER_BLOCK : o_end;
        for (int64_t b = 0; b < B; ++b) {
            int64_t rows[FISHER_BLOCK];
            float c[FISHER_BLOCK], g[FISHER_BLOCK], g2[FISHER_BLOCK];
            int n = 0;
            for (int64_t o = block; o < block_end; ++o)
                if (gy[b * O + o] != 0.0f) {
                    rows[n] = o, c[n] = u[b * O + o], g[n] = gy[b * O + o], g2[n] = g[n] * g[n];
                    ++n;
                }
            const float *x2b = x2 + b * I, *vb = v + b * I;
            float *gxb = gx == 0 ? 0 : gx + b * I;
            int i = 0;
#define CALL4(G, K) (fisher_rows4(G, I, rows + i, c + i, g + i, g2 + i, W, x2b, vb, F, gxb), 0.0f)
            for (; i + 4 <= n; i += 4)
                (void)DISPATCH(gate, PHI_ABS, CALL4);
#undef CALL4
#define CALL(G, K) (fisher_row(G, I, c[i], g[i], g2[i], W == 0 ? 0 : W + rows[i] * I, x2b, vb, F + rows[i] * I, \
                               gxb), 0.0f)
            for (; i < n; ++i)
                (void)DISPATCH(gate, PHI_ABS, CALL);
#undef CALL
        }
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

/* Full masks under numerics 5 (models/masked.py: _FullTanh, _FullMaskProduct). H (B, n) is a full
   mask (a conv layer's, n = out·in·k·k), W and f (n) the layer's weight and the plasticity term's
   Fisher (or NULL).
   Tanh gate, forward : H = tanh(Z + bias) (tanh_f or tanh_exp2; bias (n) or NULL: the generator's,
                        added here rather than by its matrix product)
             backward : dZ = dH (1 - H²),  dbias[i] = Σ_b dZ[b,i], summed over b in order
   Product, forward : WH[b,i] = W[i] H[b,i],  abs_sum[b] = Σ_i |H[b,i]|,  relu_sum[b] = Σ_i f[i] relu(H[b,i])
           backward : dH[b,i] = gWH[b,i] W[i] + gs[b] sign(H[b,i]) + gr[b] f[i] [H[b,i] > 0]
                      dW[i] = Σ_b gWH[b,i] H[b,i], summed over b in order
   The forwards take sample ranges; the backwards take ranges of the index i (each range sums dW or
   dbias over every sample), so no result depends on the thread count. */
/* One sample's H = tanh(Z + bias) (bias NULL: none); GATE is a literal (GATE_TANH or GATE_TANH_EXP2),
   so that each loop is branch-free */
INLINE void full_tanh_row(int gate, int64_t n, const float *zb, const float *bias, float *hb) {
    if (bias != 0) {
        #pragma omp simd
        for (int64_t i = 0; i < n; ++i)
            hb[i] = gate_f(gate, zb[i] + bias[i]);
    } else {
        #pragma omp simd
        for (int64_t i = 0; i < n; ++i)
            hb[i] = gate_f(gate, zb[i]);
    }
}

static void full_tanh_rows(int64_t n, int64_t b_begin, int64_t b_end, const float *z, const float *bias,
                           int gate, float *h) {
    for (int64_t b = b_begin; b < b_end; ++b) {
        if (gate == GATE_TANH_EXP2)
            full_tanh_row(GATE_TANH_EXP2, n, z + b * n, bias, h + b * n);
        else
            full_tanh_row(GATE_TANH, n, z + b * n, bias, h + b * n);
    }
}

/* Over the index range i_begin <= i < i_end: dZ = dH (1 - H²) and, when db is not NULL, the bias's
   gradient db[i] = Σ_b dZ[b,i], summed over b in order. */
static void full_tanh_backward_cols(int64_t B, int64_t n, int64_t i_begin, int64_t i_end, const float *h,
                                    const float *dh, float *dz, float *db) {
    if (db != 0)
        for (int64_t i = i_begin; i < i_end; ++i)
            db[i] = 0.0f;
    for (int64_t b = 0; b < B; ++b) {
        const float *hb = h + b * n, *dhb = dh + b * n;
        float *dzb = dz + b * n;
        if (db != 0) {
            #pragma omp simd
            for (int64_t i = i_begin; i < i_end; ++i) {
                const float d = dhb[i] * (1.0f - hb[i] * hb[i]);
                dzb[i] = d;
                db[i] += d;
            }
        } else {
            #pragma omp simd
            for (int64_t i = i_begin; i < i_end; ++i)
                dzb[i] = dhb[i] * (1.0f - hb[i] * hb[i]);
        }
    }
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

/* INCLUDE_GS / INCLUDE_GR / THROUGH_TANH: literal flags, so that each variant's loop has no branches.
   dH is computed in a register; THROUGH_TANH writes dZ = dH (1 - H²) as full_tanh_backward_cols computes
   it, and adds it into db[i] (when db is not NULL), instead of writing dH (the one-pass backward of
   full_tanh_product: dH is not written and read back with H; the same bits as the two passes). */
INLINE void full_product_backward_row(int include_gs, int include_gr, int through_tanh, int64_t i_begin,
                                      int64_t i_end, const float *hb, const float *w, const float *f,
                                      const float *gwhb, float s, float r, float *outb, float *dw, float *db) {
    #pragma omp simd
    for (int64_t i = i_begin; i < i_end; ++i) {
        const float hv = hb[i], g = gwhb[i];
        float d = g * w[i];
        if (include_gs)
            d += s * ((float)(hv > 0.0f) - (float)(hv < 0.0f));
        if (include_gr)
            d += hv > 0.0f ? r * f[i] : 0.0f;
        dw[i] += g * hv;
        if (through_tanh) {
            const float dz = d * (1.0f - hv * hv);
            outb[i] = dz;
            if (db != 0)
                db[i] += dz;
        } else {
            outb[i] = d;
        }
    }
}

/* Over the index range i_begin <= i < i_end: dW[i] = Σ_b gWH H and, through the tanh, db[i] = Σ_b dZ,
   summed over b in order; out is dH, or dZ through the tanh. */
static void full_product_backward_cols(int64_t B, int64_t n, int64_t i_begin, int64_t i_end, const float *h,
                                       const float *w, const float *f, const float *gwh, const float *gs,
                                       const float *gr, int through_tanh, float *out, float *dw, float *db) {
    for (int64_t i = i_begin; i < i_end; ++i) {
        dw[i] = 0.0f;
        if (db != 0)
            db[i] = 0.0f;
    }
    const int with_r = gr != 0 && f != 0;
    for (int64_t b = 0; b < B; ++b) {
        const float s = gs == 0 ? 0.0f : gs[b], r = with_r ? gr[b] : 0.0f;
        const float *hb = h + b * n, *gwhb = gwh + b * n;
        float *outb = out + b * n;
#define ROW(GS, GR) (through_tanh                                                                  \
    ? full_product_backward_row(GS, GR, 1, i_begin, i_end, hb, w, f, gwhb, s, r, outb, dw, db)      \
    : full_product_backward_row(GS, GR, 0, i_begin, i_end, hb, w, f, gwhb, s, r, outb, dw, db))
        if (gs != 0 && with_r)
            ROW(1, 1);
        else if (gs != 0)
            ROW(1, 0);
        else if (with_r)
            ROW(0, 1);
        else
            ROW(0, 0);
#undef ROW
    }
}

/* A full mask's tanh and product in one pass (numerics 5; models/masked.py, _FullTanhProduct): from the
   generator's pre-activation Z (B, n) and its bias (n, or NULL), H = tanh(Z + bias), WH = W H and the
   loss statistics abs_sum, relu_sum, each entry computed as full_tanh_row and full_product_rows
   compute it and each sum over i vectorised as full_product_rows' is (the same bits: checked on DWA
   AlexNet steps), without writing H and reading it back. Its backward is full_product_backward_cols
   through the tanh. */
INLINE void full_tanh_product_row(int weighted, int with_bias, int64_t n, const float *zb, const float *bias,
                                  const float *w, const float *f, float *hb, float *whb, float *abs_sum,
                                  float *relu_sum) {
    float abs_acc = 0.0f, relu_acc = 0.0f;
    #pragma omp simd reduction(+ : abs_acc, relu_acc)
    for (int64_t i = 0; i < n; ++i) {
        const float hv = gate_f(GATE_TANH_EXP2, with_bias ? zb[i] + bias[i] : zb[i]);
        hb[i] = hv;
        whb[i] = w[i] * hv;
        abs_acc += fabsf(hv);
        if (weighted)
            relu_acc += f[i] * fmaxf(hv, 0.0f);
    }
    *abs_sum = abs_acc;
    if (weighted)
        *relu_sum = relu_acc;
}

static void full_tanh_product_rows(int64_t n, int64_t b_begin, int64_t b_end, const float *z, const float *bias,
                                   const float *w, const float *f, float *h, float *wh, float *abs_sum,
                                   float *relu_sum) {
    float unused = 0.0f;
    for (int64_t b = b_begin; b < b_end; ++b) {
        const float *zb = z + b * n;
        float *hb = h + b * n, *whb = wh + b * n, *rs = f != 0 ? relu_sum + b : &unused;
        if (f != 0 && bias != 0)
            full_tanh_product_row(1, 1, n, zb, bias, w, f, hb, whb, abs_sum + b, rs);
        else if (f != 0)
            full_tanh_product_row(1, 0, n, zb, bias, w, f, hb, whb, abs_sum + b, rs);
        else if (bias != 0)
            full_tanh_product_row(0, 1, n, zb, bias, w, f, hb, whb, abs_sum + b, rs);
        else
            full_tanh_product_row(0, 0, n, zb, bias, w, f, hb, whb, abs_sum + b, rs);
    }
}

/* Rows are samples for these two */
void full_tanh_ranges(RANGES, int64_t n, const float *z, const float *bias, int gate, float *h) {
    OVER_RANGES(full_tanh_rows(n, o_begin, o_end, z, bias, gate, h))
}

void full_product_ranges(RANGES, int64_t n, const float *h, const float *w, const float *f, float *wh,
                         float *abs_sum, float *relu_sum) {
    OVER_RANGES(full_product_rows(n, o_begin, o_end, h, w, f, wh, abs_sum, relu_sum))
}

/* and ranges of the index i for these two */
void full_tanh_backward_ranges(RANGES, int64_t B, int64_t n, const float *h, const float *dh, float *dz,
                               float *db) {
    OVER_RANGES(full_tanh_backward_cols(B, n, o_begin, o_end, h, dh, dz, db))
}

void full_product_backward_ranges(RANGES, int64_t B, int64_t n, const float *h, const float *w, const float *f,
                                  const float *gwh, const float *gs, const float *gr, float *dh, float *dw) {
    OVER_RANGES(full_product_backward_cols(B, n, o_begin, o_end, h, w, f, gwh, gs, gr, 0, dh, dw, 0))
}

void full_tanh_product_ranges(RANGES, int64_t n, const float *z, const float *bias, const float *w, const float *f,
                              float *h, float *wh, float *abs_sum, float *relu_sum) {
    OVER_RANGES(full_tanh_product_rows(n, o_begin, o_end, z, bias, w, f, h, wh, abs_sum, relu_sum))
}

void full_tanh_product_backward_ranges(RANGES, int64_t B, int64_t n, const float *h, const float *w, const float *f,
                                       const float *gwh, const float *gs, const float *gr, float *dz, float *dw,
                                       float *db) {
    OVER_RANGES(full_product_backward_cols(B, n, o_begin, o_end, h, w, f, gwh, gs, gr, 1, dz, dw, db))
}
