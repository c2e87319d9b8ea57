/* exp with AVX-512 intrinsics: the fast path of the avx512 kernels.
 *
 * Why not the portable code of _vmath.h here: compiled for AVX-512, that
 * code runs at about 45 vector instructions per 8 doubles (the degree-12
 * polynomial over |r| <= ln2/2, and 2^k applied as two factors so that
 * subnormal results are rounded once), slower than NumPy's own AVX-512 exp.
 * Two AVX-512 instructions that a compiler does not emit from plain C cut
 * that to about 18:
 *
 *   vpermi2pd / vpermps  a 16-entry table lookup held in registers, so the
 *       reduction is x = (16 k + j) ln2/16 + r with |r| <= ln2/32, and a
 *       degree-6 polynomial is enough;
 *   vscalefpd / vscalefps  x * 2^floor(y) with one rounding, overflow to
 *       +inf and gradual underflow done by the instruction: no two-factor
 *       trick and no clamp of the exponent.
 *
 * double, to double accuracy (vx_exp_pd):
 *   t = x 16/ln2 + 1.5 2^52 (round to nearest; the low 4 bits of t's
 *   representation are j = kN mod 16, used as the permute index directly),
 *   kN = t - 1.5 2^52, r = (x - kN C_hi) - kN C_lo with C = ln2/16 split as
 *   VC_LN2_HI/16 + VC_LN2_LO/16 (kN C_hi exact for |kN| < 2^21);
 *   exp(r) - 1 = r + r^2 q(r), q of degree 4 (relative error of 1 + p
 *   2.8e-17 on |r| <= 1.0001 ln2/32, in exact arithmetic);
 *   2^(j/16) = T_hi + T_lo (T_lo the rounding error of T_hi), so
 *   y = T_hi + (T_hi p + T_lo) rounds once at the end; then
 *   exp(x) = scalef(y, kN/16) (floor(kN/16) = (kN - j)/16 exactly).
 *   x is clamped to [lo, 710] first (NaN passes both clamps: vmaxpd and
 *   vminpd return their second operand when either is NaN), so that r
 *   is never inf - inf; below lo the result is exactly 0.
 *   Measured: tests/test_vexp.py (<= 1.1 ulp is asserted).
 *
 * double to float accuracy (vx_exp_pd_f, for float32 data reduced in
 * double): the same reduction with q of degree 1 (relative error 4.7e-9,
 * 0.04 float ulp) and no T_lo.
 *
 * float, to float accuracy, in float arithmetic (vx_exp_ps): the same with
 * 16 lanes, the float tables T_hi + T_lo and q of degree 1; x clamped to
 * [-104, 89] (exactly 0 below -103.97 and +inf above 88.73 once rounded).
 *
 * Coefficients: Chebyshev-node interpolation of q(r) = (e^r - 1 - r)/r^2
 * in 50-digit arithmetic (mpmath), rounded; the script is in the docstring
 * of tests/test_vexp.py.  Only compiled for x86-64 with the dispatch of
 * _vkern.h; every function here carries the avx512 target attribute.
 */
#ifndef VCALC_VEXP512_H
#define VCALC_VEXP512_H

#include <immintrin.h>

#define VX_ATTR static inline __attribute__((always_inline, target("arch=x86-64-v4")))

/* 2^(j/16), j = 0..15, rounded to double, and what that rounding left. */
#define VX_TD_HI0 0x1.0000000000000p+0, 0x1.0b5586cf9890fp+0, 0x1.172b83c7d517bp+0, \
    0x1.2387a6e756238p+0, 0x1.306fe0a31b715p+0, 0x1.3dea64c123422p+0,             \
    0x1.4bfdad5362a27p+0, 0x1.5ab07dd485429p+0
#define VX_TD_HI1 0x1.6a09e667f3bcdp+0, 0x1.7a11473eb0187p+0, 0x1.8ace5422aa0dbp+0, \
    0x1.9c49182a3f090p+0, 0x1.ae89f995ad3adp+0, 0x1.c199bdd85529cp+0,             \
    0x1.d5818dcfba487p+0, 0x1.ea4afa2a490dap+0
#define VX_TD_LO0 0.0, 0x1.8a62e4adc610bp-54, -0x1.19041b9d78a76p-55,               \
    0x1.9b07eb6c70573p-54, 0x1.6f46ad23182e4p-55, 0x1.ada0911f09ebcp-55,           \
    0x1.d4397afec42e2p-56, 0x1.6324c054647adp-54
#define VX_TD_LO1 -0x1.bdd3413b26456p-54, -0x1.41577ee04992fp-55,                   \
    0x1.6e9f156864b27p-54, 0x1.c7c46b071f2bep-56, 0x1.7a1cd345dcc81p-54,           \
    0x1.11065895048ddp-55, 0x1.2ed02d75b3707p-55, -0x1.e9c23179c2893p-54

/* _mm512_set_pd takes its arguments from the highest lane down. */
#define VX_REV8(a, b, c, d, e, f, g, h) h, g, f, e, d, c, b, a
#define VX_SETR_PD(...) _mm512_set_pd(VX_REV8(__VA_ARGS__))

/* The constants of one call, built once per loop by the caller (the
 * compiler hoists them anyway; passing them keeps the functions small). */
typedef struct {
    __m512d thi0, thi1, tlo0, tlo1;
} vx_tab_pd;

VX_ATTR vx_tab_pd vx_tab_pd_make(void)
{
    vx_tab_pd t;
    t.thi0 = VX_SETR_PD(VX_TD_HI0);
    t.thi1 = VX_SETR_PD(VX_TD_HI1);
    t.tlo0 = VX_SETR_PD(VX_TD_LO0);
    t.tlo1 = VX_SETR_PD(VX_TD_LO1);
    return t;
}

/* exp(x) * 2^e2 for x >= lo (clamped there), double accuracy.  e2 = 0 is
 * plain exp (lo = -746); e2 = 64 is vc_exp_p64 (lo = -790, x <= 0).  With
 * `zero`, 0 in the lanes not in `keep` (the mask is free on vscalefpd:
 * cheaper than masking the adds that use the result). */
VX_ATTR __m512d vx_exp_pd_gz(__m512d x, const vx_tab_pd *tb, double lo, double e2,
                             int nonpos, int lo_table, int zero, __mmask8 keep)
{
    const __m512d shifter = _mm512_set1_pd(0x1.8p52);
    x = _mm512_max_pd(_mm512_set1_pd(lo), x);
    if (!nonpos)
        x = _mm512_min_pd(_mm512_set1_pd(710.0), x);
    __m512d t = _mm512_fmadd_pd(x, _mm512_set1_pd(16.0 * VC_LOG2E), shifter);
    __m512d kn = _mm512_sub_pd(t, shifter);
    __m512d r = _mm512_fnmadd_pd(kn, _mm512_set1_pd(VC_LN2_HI / 16.0), x);
    r = _mm512_fnmadd_pd(kn, _mm512_set1_pd(VC_LN2_LO / 16.0), r);
    __m512i j = _mm512_castpd_si512(t);
    __m512d thi = _mm512_permutex2var_pd(tb->thi0, j, tb->thi1);
    __m512d q = _mm512_set1_pd(0x1.6c17bb5ebddb4p-10);
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0x1.11120b03cd855p-7));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0x1.555555551946fp-5));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0x1.55555554dd388p-3));
    q = _mm512_fmadd_pd(q, r, _mm512_set1_pd(0x1.0p-1));
    __m512d p = _mm512_fmadd_pd(_mm512_mul_pd(r, r), q, r);
    __m512d y;
    if (lo_table) {
        __m512d tlo = _mm512_permutex2var_pd(tb->tlo0, j, tb->tlo1);
        y = _mm512_add_pd(thi, _mm512_fmadd_pd(thi, p, tlo));
    } else {
        y = _mm512_fmadd_pd(thi, p, thi);
    }
    __m512d k = _mm512_fmadd_pd(kn, _mm512_set1_pd(0.0625), _mm512_set1_pd(e2));
    return zero ? _mm512_maskz_scalef_pd(keep, y, k) : _mm512_scalef_pd(y, k);
}

VX_ATTR __m512d vx_exp_pd_g(__m512d x, const vx_tab_pd *tb, double lo, double e2,
                            int nonpos, int lo_table)
{
    return vx_exp_pd_gz(x, tb, lo, e2, nonpos, lo_table, 0, (__mmask8)0xff);
}

/* The variants used: exp(x) 2^e2 to double accuracy, any x >= lo (NaN
 * passes); and for the terms exp(x - max) of the reductions, x <= 0 (no
 * upper clamp) and without T_lo: each term then has up to one more ulp of error (0.5 ulp from
 * T_hi), which a sum of positive terms does not accumulate relative to
 * the sum, at two instructions fewer. */
VX_ATTR __m512d vx_exp_pd(__m512d x, const vx_tab_pd *tb, double lo, double e2)
{
    return vx_exp_pd_g(x, tb, lo, e2, 0, 1);
}

VX_ATTR __m512d vx_exp_pd_sum(__m512d x, const vx_tab_pd *tb, double lo, double e2)
{
    return vx_exp_pd_g(x, tb, lo, e2, 1, 0);
}

/* The same, 0 in the lanes not in `keep`. */
VX_ATTR __m512d vx_exp_pd_sum_z(__m512d x, const vx_tab_pd *tb, double lo, double e2,
                                __mmask8 keep)
{
    return vx_exp_pd_gz(x, tb, lo, e2, 1, 0, 1, keep);
}

/* exp(x) to float accuracy, in double (x clamped to [-708, 89] as
 * vc_exp_f; the result rounded to float by the caller, or summed). */
VX_ATTR __m512d vx_exp_pd_f(__m512d x, const vx_tab_pd *tb, double e2)
{
    const __m512d shifter = _mm512_set1_pd(0x1.8p52);
    x = _mm512_max_pd(_mm512_set1_pd(-708.0), x);
    x = _mm512_min_pd(_mm512_set1_pd(89.0), x);
    __m512d t = _mm512_fmadd_pd(x, _mm512_set1_pd(16.0 * VC_LOG2E), shifter);
    __m512d kn = _mm512_sub_pd(t, shifter);
    __m512d r = _mm512_fnmadd_pd(kn, _mm512_set1_pd(VC_LN2_HI / 16.0), x);
    __m512i j = _mm512_castpd_si512(t);
    __m512d thi = _mm512_permutex2var_pd(tb->thi0, j, tb->thi1);
    __m512d q = _mm512_fmadd_pd(_mm512_set1_pd(0x1.55565bc757fecp-3), r,
                                _mm512_set1_pd(0x1.0001480eb35f5p-1));
    __m512d p = _mm512_fmadd_pd(_mm512_mul_pd(r, r), q, r);
    __m512d y = _mm512_fmadd_pd(thi, p, thi);
    __m512d k = _mm512_fmadd_pd(kn, _mm512_set1_pd(0.0625), _mm512_set1_pd(e2));
    return _mm512_scalef_pd(y, k);
}

/* exp(x + xlo) * 2^e2 for float, in float arithmetic, for x in
 * [-152, 89] (or NaN: NaN out), no clamp; xlo (|xlo| <= ulp(x)/2, or 0)
 * is added to the reduced argument: the low part of an x that was itself
 * rounded.  With `zero`, 0 in the lanes not in `keep` (free on vscalefps,
 * as for vx_exp_pd_gz). */
VX_ATTR __m512 vx_exp_ps_core_z(__m512 x, __m512 xlo, float e2, int has_lo, int zero,
                                 __mmask16 keep)
{
    const __m512 thi = _mm512_set_ps(
        0x1.ea4afap+0f, 0x1.d5818ep+0f, 0x1.c199bep+0f, 0x1.ae89fap+0f,
        0x1.9c4918p+0f, 0x1.8ace54p+0f, 0x1.7a1148p+0f, 0x1.6a09e6p+0f,
        0x1.5ab07ep+0f, 0x1.4bfdaep+0f, 0x1.3dea64p+0f, 0x1.306fe0p+0f,
        0x1.2387a6p+0f, 0x1.172b84p+0f, 0x1.0b5586p+0f, 0x1.000000p+0f);
    const __m512 tlo = _mm512_set_ps(
        0x1.52486cp-27f, -0x1.822dbcp-27f, -0x1.3d56b2p-27f, -0x1.a94b14p-26f,
        0x1.51f848p-27f, 0x1.15506ep-27f, -0x1.829fd0p-25f, 0x1.9fcef4p-26f,
        -0x1.5bd5ecp-27f, -0x1.593abcp-25f, 0x1.824684p-25f, 0x1.4636e2p-25f,
        0x1.ceac48p-25f, -0x1.c15742p-27f, 0x1.9f3122p-25f, 0.0f);
    const __m512 shifter = _mm512_set1_ps(0x1.8p23f);
    __m512 t = _mm512_fmadd_ps(x, _mm512_set1_ps((float)(16.0 * VC_LOG2E)), shifter);
    __m512 kn = _mm512_sub_ps(t, shifter);
    /* ln2/16 = C_hi + C_lo, C_hi with 12 trailing zero bits: kN C_hi
     * exact for |kN| < 2^12 (here |kN| <= 3510). */
    __m512 r = _mm512_fnmadd_ps(kn, _mm512_set1_ps(0x1.62e4p-5f), x);
    r = _mm512_fnmadd_ps(kn, _mm512_set1_ps(0x1.7f7d1cp-24f), r);
    if (has_lo)
        r = _mm512_add_ps(r, xlo);
    __m512i j = _mm512_castps_si512(t);
    __m512 th = _mm512_permutexvar_ps(j, thi);
    __m512 tl = _mm512_permutexvar_ps(j, tlo);
    __m512 q = _mm512_fmadd_ps(_mm512_set1_ps(0x1.55565cp-3f), r,
                               _mm512_set1_ps(0x1.000148p-1f));
    __m512 p = _mm512_fmadd_ps(_mm512_mul_ps(r, r), q, r);
    __m512 y = _mm512_add_ps(th, _mm512_fmadd_ps(th, p, tl));
    __m512 k = _mm512_fmadd_ps(kn, _mm512_set1_ps(0.0625f), _mm512_set1_ps(e2));
    return zero ? _mm512_maskz_scalef_ps(keep, y, k) : _mm512_scalef_ps(y, k);
}

/* The same without the mask. */
VX_ATTR __m512 vx_exp_ps_core(__m512 x, __m512 xlo, float e2, int has_lo)
{
    return vx_exp_ps_core_z(x, xlo, e2, has_lo, 0, (__mmask16)0xffff);
}

/* exp(x) for float, any x: clamped to [-104, 89] first (NaN passes both
 * clamps: vmaxps and vminps return their second operand when either is
 * NaN). */
VX_ATTR __m512 vx_exp_ps(__m512 x)
{
    x = _mm512_max_ps(_mm512_set1_ps(-104.0f), x);
    x = _mm512_min_ps(_mm512_set1_ps(89.0f), x);
    return vx_exp_ps_core(x, _mm512_setzero_ps(), 0.0f, 0);
}

/* How many elements to take first, masked, so that the loads after them
 * are aligned to 64 bytes: a load that straddles two cache lines costs
 * about twice as much (measured: logsumexp of a float64 row of 1e5, 0.54
 * ns/element from an aligned address, 0.65 from NumPy's usual 16 bytes
 * past one).  Only rows of VX_ALIGN_MIN elements or more: on shorter rows
 * the extra step costs more than it saves. */
#define VX_ALIGN_MIN 512

VX_ATTR Py_ssize_t vx_align_head_to(const void *p, size_t item, Py_ssize_t n, size_t vec)
{
    size_t mis = (size_t)p & (vec - 1);
    if (n < VX_ALIGN_MIN || mis == 0 || mis % item)
        return 0;
    return (Py_ssize_t)((vec - mis) / item);
}

/* for loads of 64 bytes */
VX_ATTR Py_ssize_t vx_align_head(const void *p, size_t item, Py_ssize_t n)
{
    return vx_align_head_to(p, item, n, 64);
}

/* One step of 16 lanes (`full`: all of them, else those in k); see
 * vx_rest_ps_chunk.  Without `e` the lanes equal to m are zeroed by the
 * exp's own mask and the sums take both halves unmasked; with `e` the
 * terms are stored whole (maxima included) and the adds are masked. */
VX_ATTR void vx_rest_ps_step(const float *x, __mmask16 k, int full, __m512 vm, __m512 nvm,
                             __m512 lo, float *e, int raised, __m512d *s, __m512d *s2,
                             __m512i *added)
{
    __m512 xi = full ? _mm512_loadu_ps(x) : _mm512_maskz_loadu_ps(k, x);
    if (raised)
        xi = _mm512_max_ps(lo, xi);
    __m512 d = _mm512_sub_ps(xi, vm);
    __m512 z = _mm512_sub_ps(d, xi);
    __m512 err = _mm512_add_ps(_mm512_sub_ps(xi, _mm512_sub_ps(d, z)), _mm512_sub_ps(nvm, z));
    if (!raised) {
        err = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(d, lo, _CMP_GE_OQ), err);
        d = _mm512_max_ps(lo, d);
    }
    __mmask16 add = full ? _mm512_cmp_ps_mask(xi, vm, _CMP_NEQ_UQ)
                         : _mm512_mask_cmp_ps_mask(k, xi, vm, _CMP_NEQ_UQ);
    *added = _mm512_mask_sub_epi32(*added, add, *added, _mm512_set1_epi32(-1));
    if (e) {
        __m512 t = vx_exp_ps_core(d, err, 64.0f, 1);
        if (full)
            _mm512_storeu_ps(e, t);
        else
            _mm512_mask_storeu_ps(e, k, t);
        __m512d tl = _mm512_cvtps_pd(_mm512_castps512_ps256(t));
        __m512d th = _mm512_cvtps_pd(_mm512_extractf32x8_ps(t, 1));
        *s = _mm512_mask_add_pd(*s, (__mmask8)add, *s, tl);
        *s2 = _mm512_mask_add_pd(*s2, (__mmask8)(add >> 8), *s2, th);
    } else {
        __m512 t = vx_exp_ps_core_z(d, err, 64.0f, 1, 1, add);
        *s = _mm512_add_pd(*s, _mm512_cvtps_pd(_mm512_castps512_ps256(t)));
        *s2 = _mm512_add_pd(*s2, _mm512_cvtps_pd(_mm512_extractf32x8_ps(t, 1)));
    }
}

/* The rest of a float row (see VN(rest) in _vkern_body.h: the sum of
 * exp(x - m) 2^64 over the non-maximal elements, scaled back, plus the
 * number of maxima - 1; with `e`, the terms stored there), in 16 float
 * lanes.  d = x - m is rounded to float, so its rounding error (TwoSum,
 * exact in float) goes into the reduced argument.  d must reach the exp in
 * [-152, 0] (or NaN): below -150, exp(d) 2^64 is exactly 0 in float
 * anyway.  With |m| <= 2^16 (`raised`, the common case) x itself is first
 * raised to m - 150, which needs one vmaxps: d then lies in [-150.01, 0]
 * and its error is finite, -inf included; NaN passes (vmaxps returns its
 * second operand).  Otherwise m - 150 may round to m, and d is clamped
 * instead, its error zeroed where it was (there it may be huge, or NaN for
 * x = -inf).  exp(d) 2^64 is a normal float down to d = -131.  The terms
 * are summed in double, by chunks with Neumaier's compensation; the lanes
 * added are those not equal to m (NaN included), counted in a vector.
 * The full steps of 16 go without a mask (a mask made per step costs a
 * kmov on the ports of the arithmetic), then one masked step for the tail. */
VX_ATTR void vx_rest_ps_chunk(const float *x, Py_ssize_t n, __m512 vm, float *e,
                              Py_ssize_t pf, int raised, __m512d *s, __m512d *s2,
                              __m512i *added)
{
    const __m512 nvm = _mm512_sub_ps(_mm512_setzero_ps(), vm);
    const __m512 lo = raised ? _mm512_sub_ps(vm, _mm512_set1_ps(150.0f))
                             : _mm512_set1_ps(-150.0f);
    Py_ssize_t i = 0;
    for (; i + 16 <= n; i += 16) {
        _mm_prefetch((const char *)(x + i + pf), _MM_HINT_T1);
        vx_rest_ps_step(x + i, (__mmask16)0xffff, 1, vm, nvm, lo, e ? e + i : NULL, raised, s,
                        s2, added);
    }
    if (i < n)
        vx_rest_ps_step(x + i, (__mmask16)((1u << (n - i)) - 1u), 0, vm, nvm, lo,
                        e ? e + i : NULL, raised, s, s2, added);
}

/* One chunk against the row max m, with the `raised` choice made for m
 * once. */
VX_ATTR void vx_rest_ps_span(const float *x, Py_ssize_t n, double m, float *e, Py_ssize_t pf,
                             __m512d *s, __m512d *s2, __m512i *added)
{
    const __m512 vm = _mm512_set1_ps((float)m);
    int raised = m >= -65536.0 && m <= 65536.0;
    /* both choices as constants (e as a constant NULL when absent), so that
     * the chunk loop has no branch on either */
    if (raised && e)
        vx_rest_ps_chunk(x, n, vm, e, pf, 1, s, s2, added);
    else if (raised)
        vx_rest_ps_chunk(x, n, vm, NULL, pf, 1, s, s2, added);
    else if (e)
        vx_rest_ps_chunk(x, n, vm, e, pf, 0, s, s2, added);
    else
        vx_rest_ps_chunk(x, n, vm, NULL, pf, 0, s, s2, added);
}

/* pf: prefetch that many elements ahead (what the caller reads next). */
VX_ATTR double vx_rest_ps(const float *x, Py_ssize_t n, double m, float *e, Py_ssize_t pf)
{
    double total = 0.0, comp = 0.0;
    __m512i added = _mm512_setzero_si512();
    Py_ssize_t h = vx_align_head(x, sizeof(float), n);
    for (Py_ssize_t i0 = 0, len; i0 < n; i0 += len) {
        len = i0 == 0 && h ? h : (n - i0 < 256 ? n - i0 : 256);
        /* two sums: one chain of dependent adds per 16 lanes would bound
         * the loop by the add latency on rows of ~100 */
        __m512d s = _mm512_setzero_pd(), s2 = _mm512_setzero_pd();
        vx_rest_ps_span(x + i0, len, m, e ? e + i0 : NULL, pf, &s, &s2, &added);
        vc_neumaier_add(&total, &comp, _mm512_reduce_add_pd(_mm512_add_pd(s, s2)));
    }
    long long ties = (long long)n - (long long)_mm512_reduce_add_epi32(added);
    return (total + comp) * 0x1p-64 + ((double)ties - 1.0);
}

/* The 8 horizontal sums of p[0..8), as one vector (lane r: the sum of
 * p[r]), by a transpose-and-add tree: 12 shuffles and 7 adds, not 8
 * horizontal reductions. */
VX_ATTR __m512d vx_rowsum8_pd(const __m512d *p)
{
    __m512d t[4];
    for (int k = 0; k < 4; k++)
        t[k] = _mm512_add_pd(_mm512_unpacklo_pd(p[2 * k], p[2 * k + 1]),
                             _mm512_unpackhi_pd(p[2 * k], p[2 * k + 1]));
    const __m512i lo2 = _mm512_set_epi64(13, 12, 5, 4, 9, 8, 1, 0);
    const __m512i hi2 = _mm512_set_epi64(15, 14, 7, 6, 11, 10, 3, 2);
    __m512d u0 = _mm512_add_pd(_mm512_permutex2var_pd(t[0], lo2, t[1]),
                               _mm512_permutex2var_pd(t[0], hi2, t[1]));
    __m512d u1 = _mm512_add_pd(_mm512_permutex2var_pd(t[2], lo2, t[3]),
                               _mm512_permutex2var_pd(t[2], hi2, t[3]));
    const __m512i lo4 = _mm512_set_epi64(11, 10, 9, 8, 3, 2, 1, 0);
    const __m512i hi4 = _mm512_set_epi64(15, 14, 13, 12, 7, 6, 5, 4);
    return _mm512_add_pd(_mm512_permutex2var_pd(u0, lo4, u1),
                         _mm512_permutex2var_pd(u0, hi4, u1));
}

/* VN(rest) of 8 rows (nr <= 8 of them real) of n <= VX_REST8_MAX floats,
 * one chunk each: each row's sum and count of lanes added as in
 * vx_rest_ps, then the 8 rows' horizontal sums in one tree
 * (vx_rowsum8_pd) -- on rows of ~100 the per-row reductions cost about as
 * much as a quarter of the row's exponentials.  A row whose max is not
 * finite is summed against 0 (its sum means nothing; the caller sends it to
 * the edge-case path). */
#define VX_REST8_MAX 256

VX_ATTR void vx_rest8_ps(const float *x, Py_ssize_t n, Py_ssize_t nr, const double *m,
                         float *e, Py_ssize_t pf, double *rest)
{
    __m512d S[8], C[8];
    for (Py_ssize_t r = 0; r < 8; r++) {
        S[r] = C[r] = _mm512_setzero_pd();
        if (r >= nr)
            continue;
        double mr = m[r] > -HUGE_VAL && m[r] < HUGE_VAL ? m[r] : 0.0;
        __m512d s = _mm512_setzero_pd(), s2 = _mm512_setzero_pd();
        __m512i added = _mm512_setzero_si512();
        vx_rest_ps_span(x + r * n, n, mr, e ? e + r * n : NULL, pf, &s, &s2, &added);
        S[r] = _mm512_add_pd(s, s2);
        C[r] = _mm512_cvtepi32_pd(_mm256_add_epi32(_mm512_castsi512_si256(added),
                                                   _mm512_extracti64x4_epi64(added, 1)));
    }
    __m512d ties = _mm512_sub_pd(_mm512_set1_pd((double)n), vx_rowsum8_pd(C));
    __m512d r = _mm512_fmadd_pd(vx_rowsum8_pd(S), _mm512_set1_pd(0x1p-64),
                                _mm512_sub_pd(ties, _mm512_set1_pd(1.0)));
    _mm512_mask_storeu_pd(rest, (__mmask8)((1u << nr) - 1u), r);
}

/* Largest element of x[0..n), n >= 1, NaN ignored unless x[0] is NaN
 * (then NaN): the semantics of the portable m = x[i] > m ? x[i] : m, since
 * vmaxpd returns its second operand when either is NaN.  Four running
 * maxima: one would bound the loop by the latency of vmaxpd. */
#define VX_ROWMAX(NAME, T, V, W, LOAD, MLOAD, SET1, MAX, MMAX, REDUCE, MT)     \
VX_ATTR double NAME(const T *x, Py_ssize_t n)                                \
{                                                                            \
    V m0 = SET1(x[0]), m1 = m0, m2 = m0, m3 = m0;                            \
    Py_ssize_t i = vx_align_head(x, sizeof(T), n);                           \
    if (i) {                                                                 \
        MT k = (MT)((1u << i) - 1u);                                         \
        m0 = MMAX(m0, k, MLOAD(k, x), m0);                                   \
    }                                                                        \
    for (; i + 4 * W <= n; i += 4 * W) {                                     \
        m0 = MAX(LOAD(x + i), m0);                                           \
        m1 = MAX(LOAD(x + i + W), m1);                                       \
        m2 = MAX(LOAD(x + i + 2 * W), m2);                                   \
        m3 = MAX(LOAD(x + i + 3 * W), m3);                                   \
    }                                                                        \
    for (; i + W <= n; i += W)                                               \
        m0 = MAX(LOAD(x + i), m0);                                           \
    if (i < n) {                                                             \
        MT k = (MT)((1u << (n - i)) - 1u);                                   \
        m0 = MMAX(m0, k, MLOAD(k, x + i), m0);                               \
    }                                                                        \
    return (double)REDUCE(MAX(MAX(m0, m1), MAX(m2, m3)));                    \
}
VX_ROWMAX(vx_rowmax_pd, double, __m512d, 8, _mm512_loadu_pd, _mm512_maskz_loadu_pd,
          _mm512_set1_pd, _mm512_max_pd, _mm512_mask_max_pd, _mm512_reduce_max_pd, __mmask8)
VX_ROWMAX(vx_rowmax_ps, float, __m512, 16, _mm512_loadu_ps, _mm512_maskz_loadu_ps,
          _mm512_set1_ps, _mm512_max_ps, _mm512_mask_max_ps, _mm512_reduce_max_ps, __mmask16)
#undef VX_ROWMAX

/* out[i] = exp(x[i]), the elementwise kernels; the tail is masked (lanes
 * not loaded are 0, and their results are not stored). */
VX_ATTR void vx_exp_array_d(const double *x, double *out, Py_ssize_t n)
{
    vx_tab_pd tb = vx_tab_pd_make();
    Py_ssize_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm512_storeu_pd(out + i, vx_exp_pd(_mm512_loadu_pd(x + i), &tb, -746.0, 0.0));
    if (i < n) {
        __mmask8 k = (__mmask8)((1u << (n - i)) - 1u);
        __m512d v = vx_exp_pd(_mm512_maskz_loadu_pd(k, x + i), &tb, -746.0, 0.0);
        _mm512_mask_storeu_pd(out + i, k, v);
    }
}

VX_ATTR void vx_exp_array_f(const float *x, float *out, Py_ssize_t n)
{
    Py_ssize_t i = 0;
    for (; i + 16 <= n; i += 16)
        _mm512_storeu_ps(out + i, vx_exp_ps(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1u);
        _mm512_mask_storeu_ps(out + i, k, vx_exp_ps(_mm512_maskz_loadu_ps(k, x + i)));
    }
}

#endif /* VCALC_VEXP512_H */
