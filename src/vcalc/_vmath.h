/* vcalc's own vectorisable exp and log1p.
 *
 * Why our own: a loop that calls libm's exp() once per element cannot be
 * vectorised (the call is opaque and sets errno), and NumPy's SIMD exp is
 * not callable from C.  The functions below are branch-free straight-line
 * code on doubles and 64-bit integers, so that gcc and clang vectorise the
 * loops that inline them (SSE2, AVX2 or AVX-512, whatever the enclosing
 * function is compiled for, see _vkern.h).  No -ffast-math anywhere: the
 * code relies on IEEE semantics for inf, NaN and rounding.
 *
 * exp(x), double
 *   x = k ln2 + r, k = round(x / ln2), |r| <= ln2 / 2, with ln2 split in two
 *   (Cody and Waite) so that k * LN2_HI is exact for |k| < 2^21;
 *   exp(r) by a degree-12 polynomial (near-minimax on [-ln2/2, ln2/2],
 *   relative error 4.5e-19 in exact arithmetic, c0 = c1 = 1 exactly, so
 *   exp(0) = 1 exactly); then 2^k applied as two factors 2^k1 * 2^k2 with
 *   k1 = floor(k / 2): each factor is a normal number for every k in
 *   [-1076, 1025], so results in the subnormal range are rounded once and
 *   results past DBL_MAX overflow to +inf, without a branch.
 *   x is first clamped to [-746, 710]: below, the result is exactly 0; above,
 *   +inf.  NaN fails both comparisons of the clamp and stays NaN all the way.
 *   Measured error: see tests/test_vexp.py (<= 1.1 ulp, checked there).
 *
 * exp(x) to float accuracy, double in and out (float32 data)
 *   The same reduction, a degree-6 polynomial (relative error 2.5e-9, 0.04
 *   float ulp), and one factor 2^k: the clamp [-708, 89] keeps 2^k normal in
 *   double.  Rounded to float by the caller: at most about 0.54 float ulp;
 *   exactly 0 below -103.98 and +inf above 88.73 once rounded.  The lower
 *   clamp is far below float's range on purpose: sums of many terms that
 *   are each below float's smallest subnormal (in log_softmax's log1p) must
 *   still count.
 *
 * log1p(u), u >= 0 (the log of a sum of exponentials)
 *   w = 1 + u rounded, c = (u - (w - 1)) / w the first-order correction for
 *   that rounding; w = 2^e f with f in [sqrt(1/2), sqrt(2)); with g = f - 1
 *   (exact) and s = g / (2 + g), log f = g - (g^2/2 - s (g^2/2 + R(s^2))),
 *   the arrangement of fdlibm's log; R a degree-7 polynomial (relative error
 *   5.3e-19).  Only finite u >= 0 are passed (the kernels send every other
 *   row to the scalar edge-case path).
 *
 * Polynomial coefficients: Chebyshev-node interpolation in 50-digit
 * arithmetic (mpmath), rounded to double; the script is in the docstring of
 * tests/test_vexp.py.
 */
#ifndef VCALC_VMATH_H
#define VCALC_VMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

#if defined(_MSC_VER) && !defined(__clang__)
#define VC_INLINE static __forceinline
#else
#define VC_INLINE static inline __attribute__((always_inline))
#endif

VC_INLINE uint64_t vc_bits(double x) { uint64_t u; memcpy(&u, &x, 8); return u; }
VC_INLINE double vc_double(uint64_t u) { double x; memcpy(&x, &u, 8); return x; }

/* round-to-nearest by adding and subtracting 1.5 * 2^52; the low bits of
 * the sum's representation are then the integer (two's complement). */
#define VC_SHIFTER 0x1.8p52
#define VC_LOG2E 0x1.71547652b82fep0
#define VC_LN2_HI 0x1.62e42fee00000p-1   /* 21 trailing zero bits */
#define VC_LN2_LO 0x1.a39ef35793c76p-33

/* 2^k for an integer-valued double k with -1022 <= k <= 1023, via the
 * shifter: the low 12 bits of bits(k + SHIFTER) + 1023 are k + 1023. */
VC_INLINE double vc_pow2(double k)
{
    uint64_t b = vc_bits(k + VC_SHIFTER) + 1023u;
    return vc_double(b << 52);
}

/* exp(x) * 2^e for x already clamped: the shared body of vc_exp and
 * vc_exp_p64 (e = 0 or 64). */
VC_INLINE double vc_exp_scaled(double x, double e)
{
    double kd = (x * VC_LOG2E + VC_SHIFTER) - VC_SHIFTER;
    double r = (x - kd * VC_LN2_HI) - kd * VC_LN2_LO;
    double p = 0x1.1f8b43f2637adp-29;
    p = p * r + 0x1.af785d433f066p-26;
    p = p * r + 0x1.27e4cc1847a65p-22;
    p = p * r + 0x1.71dde76ab2f81p-19;
    p = p * r + 0x1.a01a01adc27e2p-16;
    p = p * r + 0x1.a01a01b80226cp-13;
    p = p * r + 0x1.6c16c16c14d77p-10;
    p = p * r + 0x1.111111110db76p-7;
    p = p * r + 0x1.5555555555559p-5;
    p = p * r + 0x1.5555555555562p-3;
    p = p * r + 0x1.0p-1;
    /* The last two steps as 1 + (r + r^2 p): the rounding of r + r^2 p is a
     * quarter of an ulp of the result at most, and 1 + ... rounds once. */
    p = 1.0 + (r + (p * r) * r);
    /* k1 = round(k / 2), k2 = k - k1 (+ e): both factors normal numbers */
    double k1 = (kd * 0.5 + VC_SHIFTER) - VC_SHIFTER;
    double k2 = kd - k1 + e;
    return (p * vc_pow2(k1)) * vc_pow2(k2);
}

VC_INLINE double vc_exp(double x)
{
    x = x < -746.0 ? -746.0 : x;
    x = x > 710.0 ? 710.0 : x;
    return vc_exp_scaled(x, 0.0);
}

/* exp(x) * 2^64, rounded once: what the softmax stores before it scales by
 * 2^-64 / sum, so that outputs in the subnormal range are rounded once, not
 * twice (once here, once by the scaling).  For x <= 0 only.  The clamp at
 * -790 (= -746 - 64 ln 2, rounded down) gives exactly 0 below it, as
 * vc_exp does below -746. */
VC_INLINE double vc_exp_p64(double x)
{
    x = x < -790.0 ? -790.0 : x;
    return vc_exp_scaled(x, 64.0);
}

/* exp(x) accurate enough to be rounded to float (see above). */
VC_INLINE double vc_exp_f(double x)
{
    x = x < -708.0 ? -708.0 : x;
    x = x > 89.0 ? 89.0 : x;
    double kd = (x * VC_LOG2E + VC_SHIFTER) - VC_SHIFTER;
    double r = (x - kd * VC_LN2_HI) - kd * VC_LN2_LO;
    double p = 0x1.6d7531eae5468p-10;
    p = p * r + 0x1.126fa6fd6e815p-7;
    p = p * r + 0x1.5554ace120b86p-5;
    p = p * r + 0x1.5554043e289bcp-3;
    p = p * r + 0x1.00000028794dfp-1;
    p = p * r + 0x1.000000a1fd6a7p+0;
    p = p * r + 1.0;
    return p * vc_pow2(kd);
}

/* Add a chunk's sum s to a running sum with Neumaier's compensation (the
 * chunked sums of the reduction kernels). */
VC_INLINE void vc_neumaier_add(double *total, double *comp, double s)
{
    double t = *total + s;
    *comp += fabs(*total) >= fabs(s) ? (*total - t) + s : (s - t) + *total;
    *total = t;
}

/* log1p(u) for finite u >= 0. */
VC_INLINE double vc_log1p(double u)
{
    double w = 1.0 + u;
    double c = (u - (w - 1.0)) / w;
    uint64_t b = vc_bits(w);
    /* Move f into [sqrt(1/2), sqrt(2)): adding (1 - sqrt(1/2)) * 2^52 to
     * the mantissa bits carries into the exponent exactly when f >=
     * sqrt(2) (musl's trick); 0x3fe6a09e = high word of sqrt(1/2). */
    uint64_t hx = (b >> 32) + (0x3ff00000u - 0x3fe6a09eu);
    double e = (double)(int64_t)((hx >> 20) & 0x7ff) - 1023.0;
    uint64_t fb = (((hx & 0x000fffffu) + 0x3fe6a09eu) << 32) | (b & 0xffffffffu);
    double f = vc_double(fb);
    double g = f - 1.0;
    double s = g / (2.0 + g);
    double z = s * s;
    double R = 0x1.0c039c49989c6p-3;
    R = R * z + 0x1.0fbe95d716020p-3;
    R = R * z + 0x1.3b1c355a8f7a2p-3;
    R = R * z + 0x1.745cf9048dd95p-3;
    R = R * z + 0x1.c71c720159177p-3;
    R = R * z + 0x1.2492492476cccp-2;
    R = R * z + 0x1.9999999999a38p-2;
    R = R * z + 0x1.5555555555555p-1;
    R = R * z;
    double hfsq = 0.5 * g * g;
    return e * VC_LN2_HI - ((hfsq - (s * (hfsq + R) + (e * VC_LN2_LO + c))) - g);
}

#endif /* VCALC_VMATH_H */
