/* Kernel bodies, compiled once per (data type, instruction set).
 *
 * Included by _vkern.h with
 *   VT    the data type, double or float (arithmetic is double either way);
 *   VN(x) the name of x for this (type, instruction set);
 *   VATTR the function attributes selecting the instruction set;
 *   VEXP  vc_exp (double data) or vc_exp_f (float data, see _vmath.h).
 * No include guard: it is meant to be included several times.
 *
 * Every row kernel takes C-contiguous (nrow, n) rows with n >= 1.  A row
 * whose maximum is not finite, or that holds a NaN (found because its sum of
 * exponentials is not >= 1), is handed to the scalar edge-case function
 * `fb` from _kernels.pyx, which overwrites whatever the fast pass wrote:
 * the common path carries no tests for inf or NaN beyond one per row.
 */

/* Largest element (NaN ignored: it is found by the sum). */
VATTR static double VN(rowmax)(const VT *restrict x, Py_ssize_t n)
{
#if VK_AVX512 && VDOUBLE
    return vx_rowmax_pd(x, n);
#elif VK_AVX512
    return vx_rowmax_ps(x, n);
#else
    VT m = x[0];
    /* clang (LLVM 14) vectorises a floating-point max reduction only under
     * no-NaNs/no-signed-zeros flags; asking it to with the pragma earns only
     * -Wpass-failed, so clang runs this loop scalar.  gcc vectorises it. */
#ifndef __clang__
#pragma omp simd reduction(max:m)
#endif
    for (Py_ssize_t i = 0; i < n; i++)
        m = x[i] > m ? x[i] : m;
    return (double)m;
#endif
}

/* The sum of exp(x_i - m) over the elements other than the maxima, plus
 * (number of maxima - 1): the sum minus its largest term, exp(0) = 1, so
 * that log1p keeps full precision near a result of 0.  Writes
 * exp(x_i - m) * 2^64 to `e` when e is not NULL (see vc_exp_p64; float data
 * get exp to float accuracy times 2^64, a normal float down to x - m = -131).
 * NaN when the row holds a NaN.
 *
 * Summation: lane-parallel sums over chunks of VCHUNK elements (the only
 * reordering, allowed by `omp simd reduction`), chunk sums added with
 * Neumaier's compensation: the error stays a few ulps however long the
 * row, where one running sum per lane would grow like sqrt(n) ulps. */
#define VCHUNK 256

#if VK_AVX512
/* The AVX-512 path: the same sums with the exp of _vexp512.h, 8 lanes of
 * double a step (float data converted on load), the row's tail masked.
 * Softmax's terms too use the exp without T_lo (up to ~1.3 ulp, not 0.83):
 * a softmax entry is then within about 3 ulps (measured 2.6 eps at most,
 * tests/test_vexp.py bounds it by 2e-15), for two instructions fewer. */
#if VDOUBLE
#define VX_LD(k, p) _mm512_maskz_loadu_pd((k), (p))
#define VX_ST(p, k, v) _mm512_mask_storeu_pd((p), (k), (v))
#define VX_EXP64(d) vx_exp_pd_sum((d), &tb, -790.0, 64.0)
#define VX_EXP64_SUM(d) vx_exp_pd_sum((d), &tb, -790.0, 64.0)
#else
#define VX_LD(k, p) _mm512_cvtps_pd(_mm256_maskz_loadu_ps((k), (p)))
#define VX_ST(p, k, v) _mm256_mask_storeu_ps((p), (k), _mm512_cvtpd_ps(v))
#define VX_EXP64(d) vx_exp_pd_f((d), &tb, 64.0)
#define VX_EXP64_SUM(d) vx_exp_pd_f((d), &tb, 64.0)
#endif
#define VX_MASK8(left) ((left) >= 8 ? (__mmask8)0xff : (__mmask8)((1u << (left)) - 1u))

/* err with d + err = x - m exactly, for d = x - m rounded (TwoSum, as in
 * the portable VN(rest)); NaN where d = -inf. */
VX_ATTR __m512d VN(vx_twosum_err)(__m512d xi, __m512d mi, __m512d d)
{
    __m512d z = _mm512_sub_pd(d, xi);
    return _mm512_add_pd(_mm512_sub_pd(xi, _mm512_sub_pd(d, z)),
                         _mm512_sub_pd(_mm512_setzero_pd(), _mm512_add_pd(mi, z)));
}

/* t (1 + err), or t where err is NaN (d = -inf). */
VX_ATTR __m512d VN(vx_corr)(__m512d xi, __m512d mi, __m512d d, __m512d t)
{
    __m512d c = _mm512_mul_pd(t, VN(vx_twosum_err)(xi, mi, d));
    return _mm512_mask_add_pd(t, _mm512_cmp_pd_mask(c, c, _CMP_ORD_Q), t, c);
}

/* o = (o f) g over a row (the last pass of VN(softmax_blocked)), in steps
 * of 8: a masked first step of h elements so that the loads and stores
 * after it are aligned (see vx_align_head; 8 floats are 32 bytes), then
 * full steps, the last one masked. */
VATTR static void VN(vx_scale2)(VT *restrict o, Py_ssize_t n, double f, double g)
{
    const __m512d vf = _mm512_set1_pd(f), vg = _mm512_set1_pd(g);
    Py_ssize_t i = vx_align_head_to(o, sizeof(VT), n, 8 * sizeof(VT));
    if (i) {
        __mmask8 k = (__mmask8)((1u << i) - 1u);
        VX_ST(o, k, _mm512_mul_pd(_mm512_mul_pd(VX_LD(k, o), vf), vg));
    }
    for (; i < n; i += 8) {
        __mmask8 k = VX_MASK8(n - i);
        VX_ST(o + i, k, _mm512_mul_pd(_mm512_mul_pd(VX_LD(k, o + i), vf), vg));
    }
}

#if VDOUBLE
/* One step of VN(rest) on 8 doubles (`full`, else the lanes in k): the
 * term exp(x - m) 2^64 (TwoSum-corrected and stored when e is given) added
 * to *acc unless x = m, the lanes added counted in *added.  The full steps
 * go without a mask (a mask made per step costs a kmov on the ports of the
 * arithmetic); without e the maxima are zeroed by the exp's own mask. */
VX_ATTR void VN(vx_rest_step)(const double *x, double *e, __mmask8 k, int full, __m512d vm,
                              const vx_tab_pd *tb, __m512d *acc, long long *added)
{
    __m512d xi = full ? _mm512_loadu_pd(x) : _mm512_maskz_loadu_pd(k, x);
    __mmask8 keep = full ? _mm512_cmp_pd_mask(xi, vm, _CMP_NEQ_UQ)
                         : _mm512_mask_cmp_pd_mask(k, xi, vm, _CMP_NEQ_UQ);
    __m512d d = _mm512_sub_pd(xi, vm);
    if (e) {
        __m512d t = VN(vx_corr)(xi, vm, d, vx_exp_pd_sum(d, tb, -790.0, 64.0));
        if (full)
            _mm512_storeu_pd(e, t);
        else
            _mm512_mask_storeu_pd(e, k, t);
        *acc = _mm512_mask_add_pd(*acc, keep, *acc, t);
    } else {
        *acc = _mm512_add_pd(*acc, vx_exp_pd_sum_z(d, tb, -790.0, 64.0, keep));
    }
    *added += __builtin_popcount((unsigned)keep);
}

/* The full steps of [i, i1), two at a time, into the two sums (elements
 * 16 j .. 16 j + 7 of the chunk into s, the next 8 into s2); returns where
 * they stopped. */
VX_ATTR Py_ssize_t VN(vx_rest_pairs)(const double *x, double *e, Py_ssize_t i, Py_ssize_t i1,
                                     Py_ssize_t pf, __m512d vm, const vx_tab_pd *tb,
                                     __m512d *s, __m512d *s2, long long *added)
{
    for (; i + 16 <= i1; i += 16) {
        _mm_prefetch((const char *)(x + i + pf), _MM_HINT_T1);
        _mm_prefetch((const char *)(x + i + 8 + pf), _MM_HINT_T1);
        VN(vx_rest_step)(x + i, e ? e + i : NULL, 0xff, 1, vm, tb, s, added);
        VN(vx_rest_step)(x + i + 8, e ? e + i + 8 : NULL, 0xff, 1, vm, tb, s2, added);
    }
    return i;
}
#endif

VATTR static double VN(rest)(const VT *restrict x, Py_ssize_t n, double m,
                             VT *restrict e, Py_ssize_t pf)
{
#if !VDOUBLE
    /* float data: 16 float lanes (see vx_rest_ps) */
    return vx_rest_ps(x, n, m, e, pf);
#else
    vx_tab_pd tb = vx_tab_pd_make();
    const __m512d vm = _mm512_set1_pd(m);
    double total = 0.0, comp = 0.0;
    long long added = 0;
    Py_ssize_t h = vx_align_head(x, sizeof(VT), n);
    for (Py_ssize_t i0 = 0, i1; i0 < n; i0 = i1) {
        i1 = i0 == 0 && h ? h : (n - i0 < VCHUNK ? n : i0 + VCHUNK);
        /* two sums, alternating by 8: one chain of dependent adds would
         * bound the loop by the add latency on rows of ~100 */
        __m512d s = _mm512_setzero_pd(), s2 = _mm512_setzero_pd();
        /* e passed as a constant NULL when absent, so that the steps
         * inlined into the loop have no branch on it */
        Py_ssize_t i = e ? VN(vx_rest_pairs)(x, e, i0, i1, pf, vm, &tb, &s, &s2, &added)
                         : VN(vx_rest_pairs)(x, NULL, i0, i1, pf, vm, &tb, &s, &s2, &added);
        if (i + 8 <= i1) {
            VN(vx_rest_step)(x + i, e ? e + i : NULL, 0xff, 1, vm, &tb, &s, &added);
            i += 8;
        }
        if (i < i1)
            VN(vx_rest_step)(x + i, e ? e + i : NULL, VX_MASK8(i1 - i), 0, vm, &tb,
                             (i - i0) & 8 ? &s2 : &s, &added);
        vc_neumaier_add(&total, &comp, _mm512_reduce_add_pd(_mm512_add_pd(s, s2)));
    }
    long long ties = (long long)n - added;
    return (total + comp) * 0x1p-64 + ((double)ties - 1.0);
#endif
}

#else
VATTR static double VN(rest)(const VT *restrict x, Py_ssize_t n, double m,
                             VT *restrict e, Py_ssize_t pf)
{
    (void)pf;   /* the AVX-512 path's prefetch distance */
    double total = 0.0, comp = 0.0, ties = 0.0;
    for (Py_ssize_t i0 = 0; i0 < n; i0 += VCHUNK) {
        Py_ssize_t i1 = n - i0 < VCHUNK ? n : i0 + VCHUNK;
        double s = 0.0, tc = 0.0;
        if (e) {
#pragma omp simd reduction(+:s, tc)
            for (Py_ssize_t i = i0; i < i1; i++) {
                double xi = (double)x[i];
                double d = xi - m;
#if VDOUBLE
                /* d + err = x - m exactly (TwoSum); exp(d + err) =
                 * exp(d)(1 + err).  Without it exp(d) would be off by
                 * |d| eps / 2 relative.  err is NaN where d = -inf (x = -inf,
                 * or x - m overflowing): dropped. */
                double z = d - xi;
                double err = (xi - (d - z)) + (-m - z);
                double t = vc_exp_p64(d);
                double c = t * err;
                t = c == c ? t + c : t;
#else
                double t = vc_exp_f(d) * 0x1p64;   /* d exact to 2^-53: enough */
#endif
                e[i] = (VT)t;
                int tie = x[i] == (VT)m;
                s += tie ? 0.0 : t;
                tc += tie ? 1.0 : 0.0;
            }
        } else {
            /* Only the sum is wanted (logsumexp, log_softmax): the rounding
             * of x - m changes each term by |d| eps / 2 relative, which
             * changes the sum by at most eps / 2 times the softmax-weighted
             * mean of |d|, i.e. its log by that much in absolute terms --
             * below an ulp of the result.  No correction here. */
#pragma omp simd reduction(+:s, tc)
            for (Py_ssize_t i = i0; i < i1; i++) {
                double d = (double)x[i] - m;
#if VDOUBLE
                double t = vc_exp_p64(d);
#else
                double t = vc_exp_f(d) * 0x1p64;
#endif
                int tie = x[i] == (VT)m;
                s += tie ? 0.0 : t;
                tc += tie ? 1.0 : 0.0;
            }
        }
        vc_neumaier_add(&total, &comp, s);
        ties += tc;
    }
    return (total + comp) * 0x1p-64 + (ties - 1.0);
}
#endif /* VK_AVX512 */

/* Rows are processed in blocks.
 *
 * Long rows (n > VSHORT): each pass a vector loop over one row (VN(rest)
 * above), a block holding as many rows as fit in VFLAT elements.
 * Short rows: blocks of up to VFLAT elements (whole rows, at most VBLOCK of
 * them).  The exponentials of the whole block are one flat vector loop,
 * with each element's row maximum laid out beside it in the scratch `w`:
 * per-row vector loops of 10 elements would spend more on their scalar
 * remainders and horizontal reductions than on the exponentials.  The
 * per-row sums then read `w`, and the final log1p of the block is one
 * vector loop over its rows.
 * Either way a block's data stays in L1/L2 between its passes. */
#define VSHORT 24               /* measured: the flat path wins below ~24 */
#define VFLAT 4096
#define VBLOCK 512

static inline Py_ssize_t VN(block_rows)(Py_ssize_t n)
{
    Py_ssize_t b = VFLAT / n;
    return b < 1 ? 1 : (b > VBLOCK ? VBLOCK : b);
}

/* A row longer than VLBLK elements: block by block, the max then the sum
 * of each block while it is in L2 (the row is read from memory once, not
 * twice), the blocks combined as they come: with the running (M, R)
 * meaning a sum e^M (1 + R) and a block's (mb, rb) meaning e^mb (1 + rb),
 *   mb > M:  R = rb + (1 + R) e^(M - mb), M = mb;   else R += (1 + rb) e^(mb - M).
 * R stays the sum of the terms other than one maximal term, each rounded a
 * few times more than unblocked, so log1p(R) keeps its precision.  A block
 * whose max is not finite (inf, NaN first, or all -inf) sends the row to
 * the edge-case path.  With `e` (softmax), each block's terms
 * exp(x - mb) 2^64 are written there and its max to mbs[block]. */
#define VLBLK 16384

VATTR static double VN(rest_blocked)(const VT *restrict x, Py_ssize_t n, double *mout,
                                     int *sp, VT *restrict e, double *restrict mbs)
{
    double M = 0.0, R = 0.0;
    for (Py_ssize_t j0 = 0; j0 < n; j0 += VLBLK) {
        Py_ssize_t len = n - j0 < VLBLK ? n - j0 : VLBLK;
        double mb = VN(rowmax)(x + j0, len);
        if (!(mb > -HUGE_VAL && mb < HUGE_VAL)) {
            *sp = 1;
            return 0.0;
        }
        /* prefetch: the next block, which the next max reads */
        double rb = VN(rest)(x + j0, len, mb, e ? e + j0 : NULL, len);
        if (!(rb >= 0.0)) {
            *sp = 1;
            return 0.0;
        }
        if (e)
            mbs[j0 / VLBLK] = mb;
        if (j0 == 0) {
            M = mb;
            R = rb;
        } else if (mb > M) {
            R = rb + (1.0 + R) * vc_exp(M - mb);
            M = mb;
        } else {
            R += (1.0 + rb) * vc_exp(mb - M);
        }
    }
    *mout = M;
    return R;
}

/* The softmax of one row longer than VLBLK elements, in two passes rather
 * than three: the blocked pass above leaves each block's terms scaled by
 * its own maximum, and one pass scales them by f = e^(mb - M) / (1 + R)
 * (mb - M TwoSum-corrected as the terms are) and 2^-64, in that order, so
 * that the result is rounded into the subnormal range only by the last
 * factor.  Returns 0 when done; 1 when a block has no finite maximum or
 * holds a NaN, or the row has more than VLBLK_MAX blocks: then the caller
 * runs the unblocked passes, which tell an edge-case row from a row with
 * one block of -inf. */
#define VLBLK_MAX 4096

VATTR static int VN(softmax_blocked)(const VT *restrict x, VT *restrict o, Py_ssize_t n)
{
    double mbs[VLBLK_MAX];
    if ((n + VLBLK - 1) / VLBLK > VLBLK_MAX)
        return 1;
    int sp = 0;
    double M = 0.0, R = VN(rest_blocked)(x, n, &M, &sp, o, mbs);
    if (sp)
        return 1;
    double inv = 1.0 / (1.0 + R);
    for (Py_ssize_t j0 = 0; j0 < n; j0 += VLBLK) {
        Py_ssize_t len = n - j0 < VLBLK ? n - j0 : VLBLK;
        double mb = mbs[j0 / VLBLK], d = mb - M, z = d - mb;
        double err = (mb - (d - z)) + (-M - z);
        double f = vc_exp(d);
        f = (f + f * err) * inv;
        VT *ob = o + j0;
#if VK_AVX512
        VN(vx_scale2)(ob, len, f, 0x1p-64);
#else
#pragma omp simd
        for (Py_ssize_t i = 0; i < len; i++)
            ob[i] = (VT)(((double)ob[i] * f) * 0x1p-64);
#endif
    }
    return 0;
}

/* Scan a block of nb long rows: maxima, rests, which rows are edge cases;
 * with `e`, the terms exp(x - m) 2^64 written there. */
VATTR static void VN(scan_long)(const VT *restrict x, Py_ssize_t nb,
                                Py_ssize_t n, double *m, double *rest,
                                unsigned char *special, VT *e)
{
    /* All the maxima first, then all the sums: a row's max, then its sum,
     * is one long chain of dependent operations (the max reduction, then
     * the sum's); rows taken one after the other would leave the
     * out-of-order core waiting on each. */
    if (!e && n > VLBLK) {
        for (Py_ssize_t b = 0; b < nb; b++) {
            int sp = 0;
            double mb = 0.0, r = VN(rest_blocked)(x + b * n, n, &mb, &sp, NULL, NULL);
            m[b] = sp ? 0.0 : mb;
            rest[b] = sp ? 0.0 : r;
            special[b] = (unsigned char)sp;
        }
        return;
    }
    for (Py_ssize_t b = 0; b < nb; b++)
        m[b] = VN(rowmax)(x + b * n, n);
#if VK_AVX512 && !VDOUBLE
    if (n <= VX_REST8_MAX) {
        /* 8 rows' sums at a time (see vx_rest8_ps); prefetch as below */
        for (Py_ssize_t b0 = 0; b0 < nb; b0 += 8)
            vx_rest8_ps(x + b0 * n, n, nb - b0 < 8 ? nb - b0 : 8, m + b0,
                        e ? e + b0 * n : NULL, nb * n, rest + b0);
        for (Py_ssize_t b = 0; b < nb; b++) {
            int sp = !(m[b] > -HUGE_VAL && m[b] < HUGE_VAL) || !(rest[b] >= 0.0);
            m[b] = sp ? 0.0 : m[b];
            rest[b] = sp ? 0.0 : rest[b];
            special[b] = (unsigned char)sp;
        }
        return;
    }
#endif
    for (Py_ssize_t b = 0; b < nb; b++) {
        const VT *row = x + b * n;
        double mb = m[b];
        double r = 0.0;
        int sp = !(mb > -HUGE_VAL && mb < HUGE_VAL);
        if (!sp) {
            /* prefetch: the same place in the next block of rows, which
             * the next max pass reads */
            r = VN(rest)(row, n, mb, e ? e + b * n : NULL, nb * n);
            sp = !(r >= 0.0);       /* NaN in the row */
        }
        m[b] = sp ? 0.0 : mb;
        rest[b] = sp ? 0.0 : r;     /* keeps the vector log1p finite */
        special[b] = (unsigned char)sp;
    }
}

/* Rows of 2 to 16 elements: the per-row passes of VN(scan_short) with n a
 * compile-time constant, so that they unroll completely -- a vector loop
 * of 10 elements spends more on its prologue, remainder and horizontal
 * reduction than on the work.  The same operations in the same order as
 * the general loops (max; then the sum of the non-maximal terms). */
#define VSHORT_FIXED(N)                                                      \
VATTR static void VN(short_head_##N)(const VT *restrict x, Py_ssize_t nb,    \
                                     double *restrict m,                     \
                                     unsigned char *restrict special,        \
                                     double *restrict w)                     \
{                                                                            \
    for (Py_ssize_t b = 0; b < nb; b++) {                                    \
        const VT *row = x + b * N;                                           \
        VT mb = row[0];                                                      \
        for (int i = 1; i < N; i++)                                          \
            mb = row[i] > mb ? row[i] : mb;                                  \
        double md = (double)mb;                                              \
        int sp = !(md > -HUGE_VAL && md < HUGE_VAL);                         \
        md = sp ? 0.0 : md;                                                  \
        m[b] = md;                                                           \
        special[b] = (unsigned char)sp;                                      \
        for (int i = 0; i < N; i++)                                          \
            w[b * N + i] = md;                                               \
    }                                                                        \
}                                                                            \
VATTR static void VN(short_tail_##N)(const VT *restrict x, Py_ssize_t nb,    \
                                     const double *restrict m,               \
                                     double *restrict rest,                  \
                                     unsigned char *restrict special,        \
                                     const double *restrict w)               \
{                                                                            \
    for (Py_ssize_t b = 0; b < nb; b++) {                                    \
        const VT *row = x + b * N;                                           \
        const double *wb = w + b * N;                                        \
        VT mb = (VT)m[b];                                                    \
        double s = 0.0, ties = 0.0;                                          \
        for (int i = 0; i < N; i++) {                                        \
            int tie = row[i] == mb;                                          \
            s += tie ? 0.0 : wb[i];                                          \
            ties += tie ? 1.0 : 0.0;                                         \
        }                                                                    \
        double r = s * 0x1p-64 + (ties - 1.0);                               \
        int sp = special[b] || !(r >= 0.0);                                  \
        rest[b] = sp ? 0.0 : r;                                              \
        special[b] = (unsigned char)sp;                                      \
    }                                                                        \
}                                                                            \
VATTR static void VN(short_fill_##N)(const double *restrict v, Py_ssize_t nb, \
                                     double *restrict w)                     \
{                                                                            \
    for (Py_ssize_t b = 0; b < nb; b++)                                      \
        for (int i = 0; i < N; i++)                                          \
            w[b * N + i] = v[b];                                             \
}

VSHORT_FIXED(2) VSHORT_FIXED(3) VSHORT_FIXED(4) VSHORT_FIXED(5)
VSHORT_FIXED(6) VSHORT_FIXED(7) VSHORT_FIXED(8) VSHORT_FIXED(9)
VSHORT_FIXED(10) VSHORT_FIXED(11) VSHORT_FIXED(12) VSHORT_FIXED(13)
VSHORT_FIXED(14) VSHORT_FIXED(15) VSHORT_FIXED(16)
#undef VSHORT_FIXED
#define VCASES VCASE(2) VCASE(3) VCASE(4) VCASE(5) VCASE(6) VCASE(7) VCASE(8) \
    VCASE(9) VCASE(10) VCASE(11) VCASE(12) VCASE(13) VCASE(14) VCASE(15) VCASE(16)

/* w[b * n + i] = v[b] for n <= 16 (a row's value beside each of its elements). */
VATTR static void VN(short_fill)(const double *restrict v, Py_ssize_t nb,
                                 Py_ssize_t n, double *restrict w)
{
    switch (n) {
#define VCASE(N) case N: VN(short_fill_##N)(v, nb, w); break;
    VCASES
#undef VCASE
    default:
        for (Py_ssize_t b = 0; b < nb; b++)
            for (Py_ssize_t i = 0; i < n; i++)
                w[b * n + i] = v[b];
    }
}

/* The same for a block of nb short rows (nb * n <= VFLAT), the terms
 * exp(x - m) 2^64 left in w (double, nb * n); `corr`: with the TwoSum
 * correction of each term (softmax: see VN(rest)). */
VATTR static void VN(scan_short)(const VT *restrict x, Py_ssize_t nb,
                                 Py_ssize_t n, double *m, double *rest,
                                 unsigned char *special, double *restrict w,
                                 int corr)
{
    Py_ssize_t total = nb * n;
    switch (n) {
#define VCASE(N) case N: VN(short_head_##N)(x, nb, m, special, w); break;
    VCASES
#undef VCASE
    default:
        for (Py_ssize_t b = 0; b < nb; b++) {
            const VT *row = x + b * n;
            double mb = VN(rowmax)(row, n);
            int sp = !(mb > -HUGE_VAL && mb < HUGE_VAL);
            mb = sp ? 0.0 : mb;     /* edge rows: anything finite will do */
            m[b] = mb;
            special[b] = (unsigned char)sp;
            for (Py_ssize_t i = 0; i < n; i++)
                w[b * n + i] = mb;
        }
    }
#if VDOUBLE
    if (corr) {
#pragma omp simd
        for (Py_ssize_t i = 0; i < total; i++) {
            double xi = x[i], mi = w[i];
            double d = xi - mi;
            double z = d - xi;      /* TwoSum, as in VN(rest) */
            double err = (xi - (d - z)) + (-mi - z);
            double t = vc_exp_p64(d);
            double c = t * err;
            w[i] = c == c ? t + c : t;
        }
    } else {
#pragma omp simd
        for (Py_ssize_t i = 0; i < total; i++)
            w[i] = vc_exp_p64(x[i] - w[i]);
    }
#else
    (void)corr;
#pragma omp simd
    for (Py_ssize_t i = 0; i < total; i++)
        w[i] = vc_exp_f((double)x[i] - w[i]) * 0x1p64;
#endif
    switch (n) {
#define VCASE(N) case N: VN(short_tail_##N)(x, nb, m, rest, special, w); break;
    VCASES
#undef VCASE
    default:
        for (Py_ssize_t b = 0; b < nb; b++) {
            const VT *row = x + b * n;
            const double *wb = w + b * n;
            VT mb = (VT)m[b];
            double s = 0.0, ties = 0.0;
#pragma omp simd reduction(+:s, ties)
            for (Py_ssize_t i = 0; i < n; i++) {
                int tie = row[i] == mb;
                s += tie ? 0.0 : wb[i];
                ties += tie ? 1.0 : 0.0;
            }
            double r = s * 0x1p-64 + (ties - 1.0);
            int sp = special[b] || !(r >= 0.0);     /* NaN in the row */
            rest[b] = sp ? 0.0 : r;
            special[b] = (unsigned char)sp;
        }
    }
}

#if VK_AVX512
/* Short rows on the AVX-512 path: 8 rows at a time, one lane per row, the
 * j-th elements of the 8 rows fetched with one gather (from L1: the block
 * was just read).  The max is then n vertical max, the exponentials are
 * full vectors whatever n is, and the sums need no horizontal reduction:
 * the per-row scalar passes of VN(scan_short) cost more than the
 * exponentials.  Same operations in the same order per row as there. */
#if VDOUBLE
#define VX_GATHER(k, idx, p) _mm512_mask_i64gather_pd(_mm512_setzero_pd(), (k), (idx), (p), 8)
#else
#define VX_GATHER(k, idx, p) \
    _mm512_cvtps_pd(_mm512_mask_i64gather_ps(_mm256_setzero_ps(), (k), (idx), (p), 4))
#endif

VATTR static void VN(scan_gather)(const VT *restrict x, Py_ssize_t nb, Py_ssize_t n,
                                  double *m, double *rest, unsigned char *special)
{
    vx_tab_pd tb = vx_tab_pd_make();
    const __m512i idx = _mm512_mullo_epi64(_mm512_set_epi64(7, 6, 5, 4, 3, 2, 1, 0),
                                           _mm512_set1_epi64((long long)n));
    const __m512d one = _mm512_set1_pd(1.0), inf = _mm512_set1_pd(HUGE_VAL);
    for (Py_ssize_t b0 = 0; b0 < nb; b0 += 8) {
        __mmask8 k = VX_MASK8(nb - b0);
        const VT *p = x + b0 * n;
        /* the rows 4 blocks of 8 ahead: n cache lines hold 8 rows of double */
        for (Py_ssize_t j = 0; j < n; j++)
            _mm_prefetch((const char *)(p + 32 * n) + 64 * j, _MM_HINT_T0);
        /* the gathered elements kept, transposed, for the sums: a load
         * from L1 costs less than a second gather */
        __m512d xt[VSHORT];
        __m512d M = xt[0] = VX_GATHER(k, idx, p);
        for (Py_ssize_t j = 1; j < n; j++) {
            xt[j] = VX_GATHER(k, idx, p + j);
            M = _mm512_max_pd(xt[j], M);
        }
        __mmask8 fin = _mm512_cmp_pd_mask(M, inf, _CMP_LT_OQ) &
                       _mm512_cmp_pd_mask(M, -inf, _CMP_GT_OQ);
        M = _mm512_maskz_mov_pd(fin, M);
        __m512d s = _mm512_setzero_pd(), tc = _mm512_setzero_pd();
        for (Py_ssize_t j = 0; j < n; j++) {
            __m512d xj = xt[j];
            __m512d t = VX_EXP64_SUM(_mm512_sub_pd(xj, M));
            __mmask8 tie = _mm512_cmp_pd_mask(xj, M, _CMP_EQ_OQ);
            s = _mm512_mask_add_pd(s, (__mmask8)~tie, s, t);
            tc = _mm512_mask_add_pd(tc, tie, tc, one);
        }
        __m512d r = _mm512_fmadd_pd(s, _mm512_set1_pd(0x1p-64), _mm512_sub_pd(tc, one));
        __mmask8 ok = fin & _mm512_cmp_pd_mask(r, _mm512_setzero_pd(), _CMP_GE_OQ);
        _mm512_mask_storeu_pd(m + b0, k, M);
        _mm512_mask_storeu_pd(rest + b0, k, _mm512_maskz_mov_pd(ok, r));
        for (int l = 0; l < 8 && b0 + l < nb; l++)
            special[b0 + l] = (unsigned char)!((ok >> l) & 1);
    }
}
#undef VX_GATHER

/* A block of nb short rows (n <= VSHORT), flat: 8 consecutive elements a
 * step, whichever rows they fall in, each lane's row constants a[r] and
 * c[r] brought in by vpermpd from the 8 entries starting at the step's
 * first row (8 elements span at most 5 rows of n >= 2).  The permute index
 * depends only on where the step starts in its row, which repeats every
 * P = n / gcd(n, 8) steps (8 P elements, 8 P / n rows): a table of P index
 * vectors and first rows, built once, so that no step waits on the last.
 * Per row, two masked vector steps (10 elements in 16 lanes) and their
 * constants cost more than this.
 *   softmax (logsm = 0):  o = exp(x - a) c, a the row's max and c =
 *       2^-64 / sum (TwoSum-corrected for double data, as in VN(rest));
 *   log_softmax:          o = (x - a) - c, c the log of the sum (see
 *       VN(log_softmax_elem)).
 * a and c must be readable to index nb + 7 (what lies past nb is read but
 * not used).  Edge-case rows get whatever the step computes; the caller
 * overwrites them. */
VATTR static void VN(vx_flat2)(const VT *restrict x, VT *restrict o, Py_ssize_t nb,
                               Py_ssize_t n, const double *a, const double *c, int logsm)
{
    __m512i tab[VSHORT];
    Py_ssize_t first[VSHORT];
    Py_ssize_t g = n % 8 == 0 ? 8 : (n % 4 == 0 ? 4 : (n % 2 == 0 ? 2 : 1));
    Py_ssize_t P = n / g, rows = 8 * P / n;
    for (Py_ssize_t i = 0; i < P; i++) {
        Py_ssize_t e0 = 8 * i;
        long long v[8];
        for (int l = 0; l < 8; l++)
            v[l] = (long long)((e0 + l) / n - e0 / n);
        tab[i] = _mm512_loadu_si512((const void *)v);
        first[i] = e0 / n;
    }
    vx_tab_pd tb = vx_tab_pd_make();
    const Py_ssize_t total = nb * n;
    for (Py_ssize_t p0 = 0, r0 = 0; p0 < total; p0 += 8 * P, r0 += rows) {
        for (Py_ssize_t i = 0; i < P && p0 + 8 * i < total; i++) {
            Py_ssize_t p = p0 + 8 * i, r = r0 + first[i];
            __mmask8 k = VX_MASK8(total - p);
            __m512d xi = VX_LD(k, x + p);
            __m512d va = _mm512_permutexvar_pd(tab[i], _mm512_loadu_pd(a + r));
            __m512d vc = _mm512_permutexvar_pd(tab[i], _mm512_loadu_pd(c + r));
            __m512d d = _mm512_sub_pd(xi, va);
            __m512d y;
            if (logsm) {
                y = _mm512_sub_pd(d, vc);
#if VDOUBLE
                __m512d err = VN(vx_twosum_err)(xi, va, d);
                y = _mm512_mask_add_pd(y, _mm512_cmp_pd_mask(err, err, _CMP_ORD_Q), y, err);
#endif
            } else {
                __m512d t = VX_EXP64(d);
#if VDOUBLE
                t = VN(vx_corr)(xi, va, d, t);
#endif
                y = _mm512_mul_pd(t, vc);
            }
            VX_ST(o + p, k, y);
        }
    }
}
#endif /* VK_AVX512 */

/* Scan a block by the path for its row length.  With `e` (softmax): the
 * terms exp(x - m) 2^64, TwoSum-corrected, end in `e` for long rows and in
 * `w` for short ones; without, only the sums are wanted. */
VATTR static void VN(scan)(const VT *restrict x, Py_ssize_t nb, Py_ssize_t n,
                           double *m, double *rest, unsigned char *special,
                           double *restrict w, VT *e)
{
    if (n > VSHORT)
        VN(scan_long)(x, nb, n, m, rest, special, e);
#if VK_AVX512
    else if (!e)
        VN(scan_gather)(x, nb, n, m, rest, special);
#endif
    else
        VN(scan_short)(x, nb, n, m, rest, special, w, e != NULL);
}

VATTR static void VN(logsumexp)(const VT *restrict x, VT *restrict out,
                                Py_ssize_t nrow, Py_ssize_t n, VFB_REDUCE fb)
{
    double m[VBLOCK], rest[VBLOCK], w[VFLAT];
    unsigned char special[VBLOCK];
    Py_ssize_t step = VN(block_rows)(n);
    for (Py_ssize_t r0 = 0; r0 < nrow; r0 += step) {
        Py_ssize_t nb = nrow - r0 < step ? nrow - r0 : step;
        VN(scan)(x + r0 * n, nb, n, m, rest, special, w, NULL);
#pragma omp simd
        for (Py_ssize_t b = 0; b < nb; b++)
            out[r0 + b] = (VT)(m[b] + vc_log1p(rest[b]));
        for (Py_ssize_t b = 0; b < nb; b++)
            if (special[b])
                out[r0 + b] = (VT)fb(x + (r0 + b) * n, n);
    }
}

VATTR static void VN(softmax)(const VT *restrict x, VT *restrict out,
                              Py_ssize_t nrow, Py_ssize_t n, VFB_ROWS fb)
{
    /* 8 entries past a block: read (not used) by VN(vx_flat2) */
    double m[VBLOCK + 8], rest[VBLOCK], w[VFLAT], w2[VFLAT];
    unsigned char special[VBLOCK];
#if VK_AVX512
    double inv[VBLOCK + 8];
#endif
    Py_ssize_t step = VN(block_rows)(n);
    for (Py_ssize_t r0 = 0; r0 < nrow; r0 += step) {
        Py_ssize_t nb = nrow - r0 < step ? nrow - r0 : step;
        int isshort = n <= VSHORT;
#if VK_AVX512
        if (isshort) {
            VN(scan_gather)(x + r0 * n, nb, n, m, rest, special);
#pragma omp simd
            for (Py_ssize_t b = 0; b < nb; b++)
                inv[b] = 0x1p-64 / (1.0 + rest[b]);
            for (int l = 0; l < 8; l++)
                m[nb + l] = inv[nb + l] = 0.0;
            VN(vx_flat2)(x + r0 * n, out + r0 * n, nb, n, m, inv, 0);
            for (Py_ssize_t b = 0; b < nb; b++)
                if (special[b])
                    fb(x + (r0 + b) * n, out + (r0 + b) * n, n);
            continue;
        }
#endif
        if (n > VLBLK && !VN(softmax_blocked)(x + r0 * n, out + r0 * n, n))
            continue;       /* (then nb = 1) */
        VN(scan)(x + r0 * n, nb, n, m, rest, special, w, out + r0 * n);
        if (n <= 16) {
            /* Rows this short are scaled in one flat loop too, each row's
             * factor laid out beside its terms (in m's place: m is spent). */
            double inv[VBLOCK];
            for (Py_ssize_t b = 0; b < nb; b++)
                inv[b] = 0x1p-64 / (1.0 + rest[b]);
            VN(short_fill)(inv, nb, n, w2);
            VT *o = out + r0 * n;
#pragma omp simd
            for (Py_ssize_t i = 0; i < nb * n; i++)
                o[i] = (VT)(w[i] * w2[i]);
            for (Py_ssize_t b = 0; b < nb; b++)
                if (special[b])
                    fb(x + (r0 + b) * n, out + (r0 + b) * n, n);
            continue;
        }
        for (Py_ssize_t b = 0; b < nb; b++) {
            VT *o = out + (r0 + b) * n;
            if (special[b]) {
                fb(x + (r0 + b) * n, o, n);
                continue;
            }
            /* The terms are exp(x - m) 2^64; the sum is 1 + rest. */
            double inv = 0x1p-64 / (1.0 + rest[b]);
            if (isshort) {
                const double *wb = w + b * n;
#pragma omp simd
                for (Py_ssize_t i = 0; i < n; i++)
                    o[i] = (VT)(wb[i] * inv);
            } else {
#pragma omp simd
                for (Py_ssize_t i = 0; i < n; i++)
                    o[i] = (VT)((double)o[i] * inv);
            }
        }
    }
}

/* (x - m) - l, one element of log_softmax.  For double data the rounding
 * error of x - m is added back: it matters where x - m and l nearly cancel.
 * NaN err (d = -inf): -inf is the right rounding.  For float data d is
 * exact to 2^-53 and the result is rounded to float. */
VC_INLINE double VN(log_softmax_elem)(double xi, double m, double l)
{
    double d = xi - m;
#if VDOUBLE
    double z = d - xi;
    double err = (xi - (d - z)) + (-m - z);
    return err == err ? (d - l) + err : d - l;
#else
    return d - l;
#endif
}

/* The log_softmax of one row too long to stay in L2 (VREV_MIN elements or
 * more): the same element function, over chunks of VREV_CHUNK taken from
 * the row's end backwards.  The pass that found m and l read the row from
 * its start, so its last part is still in L2 and is read first. */
#define VREV_MIN (1 << 18)
#define VREV_CHUNK 4096
VATTR static void VN(log_softmax_rev)(const VT *restrict x, VT *restrict o, Py_ssize_t n,
                                      double m, double l)
{
    for (Py_ssize_t end = n; end > 0; end -= VREV_CHUNK) {
        Py_ssize_t start = end > VREV_CHUNK ? end - VREV_CHUNK : 0;
#pragma omp simd
        for (Py_ssize_t i = start; i < end; i++)
            o[i] = (VT)VN(log_softmax_elem)((double)x[i], m, l);
    }
}

VATTR static void VN(log_softmax)(const VT *restrict x, VT *restrict out,
                                  Py_ssize_t nrow, Py_ssize_t n, VFB_ROWS fb)
{
    /* 8 entries past a block: read (not used) by VN(vx_flat2) */
    double m[VBLOCK + 8], rest[VBLOCK], l[VBLOCK + 8], w[VFLAT], w2[VFLAT];
    unsigned char special[VBLOCK];
    Py_ssize_t step = VN(block_rows)(n);
    for (Py_ssize_t r0 = 0; r0 < nrow; r0 += step) {
        Py_ssize_t nb = nrow - r0 < step ? nrow - r0 : step;
        VN(scan)(x + r0 * n, nb, n, m, rest, special, w, NULL);
#pragma omp simd
        for (Py_ssize_t b = 0; b < nb; b++)
            l[b] = vc_log1p(rest[b]);
#if VK_AVX512
        if (n <= VSHORT) {
            for (int j = 0; j < 8; j++)
                m[nb + j] = l[nb + j] = 0.0;
            VN(vx_flat2)(x + r0 * n, out + r0 * n, nb, n, m, l, 1);
            for (Py_ssize_t b = 0; b < nb; b++)
                if (special[b])
                    fb(x + (r0 + b) * n, out + (r0 + b) * n, n);
            continue;
        }
#endif
        if (n <= 16) {
            /* One flat loop for the block, as in VN(softmax). */
            VN(short_fill)(m, nb, n, w);
            VN(short_fill)(l, nb, n, w2);
            const VT *xb = x + r0 * n;
            VT *o = out + r0 * n;
#pragma omp simd
            for (Py_ssize_t i = 0; i < nb * n; i++)
                o[i] = (VT)VN(log_softmax_elem)((double)xb[i], w[i], w2[i]);
            for (Py_ssize_t b = 0; b < nb; b++)
                if (special[b])
                    fb(x + (r0 + b) * n, out + (r0 + b) * n, n);
            continue;
        }
        for (Py_ssize_t b = 0; b < nb; b++) {
            const VT *row = x + (r0 + b) * n;
            VT *o = out + (r0 + b) * n;
            if (special[b]) {
                fb(row, o, n);
                continue;
            }
            double mb = m[b], lb = l[b];
            if (n >= VREV_MIN) {
                VN(log_softmax_rev)(row, o, n, mb, lb);
                continue;
            }
#pragma omp simd
            for (Py_ssize_t i = 0; i < n; i++)
                o[i] = (VT)VN(log_softmax_elem)((double)row[i], mb, lb);
        }
    }
}

/* exp elementwise (the building block, exposed for tests and benchmarks). */
VATTR static void VN(exp)(const VT *restrict x, VT *restrict out, Py_ssize_t n)
{
#if VK_AVX512 && VDOUBLE
    vx_exp_array_d(x, out, n);
#elif VK_AVX512
    vx_exp_array_f(x, out, n);
#else
#pragma omp simd
    for (Py_ssize_t i = 0; i < n; i++)
        out[i] = (VT)VEXP((double)x[i]);
#endif
}

/* Quadratic forms with a shared matrix.  S = A + A^T in double (n x n).
 * Row r: g = S x_r and v = x_r . g / 2 (= x^T A x); the value and the
 * gradient come from the same sums, so value-only, gradient-only and both
 * agree bit for bit.  For n <= 8 the size is a compile-time constant: the
 * inner loops unroll, S stays in registers and the row loop vectorises
 * across rows.  `v` or `g` may be NULL (not wanted). */
#define VQF_FIXED(N)                                                         \
VATTR static void VN(qf_n##N)(const double *restrict S,                      \
                              const VT *restrict X, Py_ssize_t B,            \
                              VT *restrict v, VT *restrict G)                \
{                                                                            \
    double s[N * N];                                                         \
    for (int k = 0; k < N * N; k++) s[k] = S[k];                             \
    if (v && G) {                                                            \
        VK_OMP_SIMD                                                          \
        for (Py_ssize_t r = 0; r < B; r++) {                                 \
            double val = 0.0;                                                \
            for (int i = 0; i < N; i++) {                                    \
                double gi = 0.0;                                             \
                for (int j = 0; j < N; j++)                                  \
                    gi += s[i * N + j] * (double)X[r * N + j];               \
                G[r * N + i] = (VT)gi;                                       \
                val += (double)X[r * N + i] * gi;                            \
            }                                                                \
            v[r] = (VT)(0.5 * val);                                          \
        }                                                                    \
    } else if (G) {                                                          \
        VK_OMP_SIMD                                                          \
        for (Py_ssize_t r = 0; r < B; r++) {                                 \
            for (int i = 0; i < N; i++) {                                    \
                double gi = 0.0;                                             \
                for (int j = 0; j < N; j++)                                  \
                    gi += s[i * N + j] * (double)X[r * N + j];               \
                G[r * N + i] = (VT)gi;                                       \
            }                                                                \
        }                                                                    \
    } else {                                                                 \
        VK_OMP_SIMD                                                          \
        for (Py_ssize_t r = 0; r < B; r++) {                                 \
            double val = 0.0;                                                \
            for (int i = 0; i < N; i++) {                                    \
                double gi = 0.0;                                             \
                for (int j = 0; j < N; j++)                                  \
                    gi += s[i * N + j] * (double)X[r * N + j];               \
                val += (double)X[r * N + i] * gi;                            \
            }                                                                \
            v[r] = (VT)(0.5 * val);                                          \
        }                                                                    \
    }                                                                        \
}

VQF_FIXED(1)
#if !VK_AVX512
VQF_FIXED(2)
VQF_FIXED(3)
#endif
VQF_FIXED(4)
VQF_FIXED(5)
VQF_FIXED(6)
VQF_FIXED(7)
#if !VK_AVX512
VQF_FIXED(8)   /* the AVX-512 path has its own, VN(vx_qf8) */
#endif
#undef VQF_FIXED

#if VK_AVX512 || VK_AVX2
/* The one-pass kernels' copy of S (VN(vx_qfm), VN(vy_qfm)): c[j][i] = S[i][j], each column
 * of S zero-padded to w doubles (w = 8 or 4 NV). */
VATTR static void VN(qf_columns)(const double *restrict S, Py_ssize_t n, Py_ssize_t w,
                                 double *restrict c)
{
    for (Py_ssize_t j = 0; j < n; j++)
        for (Py_ssize_t i = 0; i < w; i++)
            c[j * w + i] = i < n ? S[i * n + j] : 0.0;
}

#endif

#if VK_AVX512
/* n = 8 on the AVX-512 path: one row is one vector.  g = S x is 8 FMAs of
 * the columns of S (in registers) by the broadcast x_j, in the order of the
 * portable loop (g_i = ((s_i0 x_0 + s_i1 x_1) + ...) with contraction);
 * the values x . g / 2 of 8 rows are summed by one transpose-and-add tree
 * instead of 8 horizontal reductions.  A last partial block of rows is
 * copied into a zero-padded 8 x 8 tile, so that every row goes through the
 * same operations: value-only, gradient-only and both agree bit for bit. */
VATTR static void VN(vx_qf8_block)(const __m512d *c, const VT *restrict X,
                                   VT *restrict v, VT *restrict G)
{
    __m512d p[8];
    for (int q = 0; q < 8; q++) {
#if VDOUBLE
        const double *x = X + q * 8;
        __m512d xv = _mm512_loadu_pd(x);
        __m512d g = _mm512_mul_pd(c[0], _mm512_set1_pd(x[0]));
        __m512d h = _mm512_mul_pd(c[4], _mm512_set1_pd(x[4]));
        for (int j = 1; j < 4; j++) {
            g = _mm512_fmadd_pd(c[j], _mm512_set1_pd(x[j]), g);
            h = _mm512_fmadd_pd(c[j + 4], _mm512_set1_pd(x[j + 4]), h);
        }
        g = _mm512_add_pd(g, h);
        if (G) _mm512_storeu_pd(G + q * 8, g);
#else
        __m512d xv = _mm512_cvtps_pd(_mm256_loadu_ps(X + q * 8));
        __m512d g = _mm512_mul_pd(c[0], _mm512_permutexvar_pd(_mm512_set1_epi64(0), xv));
        __m512d h = _mm512_mul_pd(c[4], _mm512_permutexvar_pd(_mm512_set1_epi64(4), xv));
        for (int j = 1; j < 4; j++) {
            g = _mm512_fmadd_pd(c[j], _mm512_permutexvar_pd(_mm512_set1_epi64(j), xv), g);
            h = _mm512_fmadd_pd(c[j + 4], _mm512_permutexvar_pd(_mm512_set1_epi64(j + 4), xv), h);
        }
        g = _mm512_add_pd(g, h);
        if (G) _mm256_storeu_ps(G + q * 8, _mm512_cvtpd_ps(g));
#endif
        p[q] = _mm512_mul_pd(xv, g);
    }
    if (v) {
        __m512d val = _mm512_mul_pd(vx_rowsum8_pd(p), _mm512_set1_pd(0.5));
#if VDOUBLE
        _mm512_storeu_pd(v, val);
#else
        _mm256_storeu_ps(v, _mm512_cvtpd_ps(val));
#endif
    }
}

/* n = 3 on the AVX-512 path (written for N = 2 or 3): 8 rows are N vectors (the row-major
 * block); permutes split them into the 8 rows' components X_0 .. X_N-1
 * (one vector each), g_i = ((s_i0 X_0 + s_i1 X_1) + ...) are vector FMAs
 * with s_ij broadcast, in the order of the portable loop, the values
 * ((X_0 g_0 + X_1 g_1) + ...) / 2 need no shuffle at all, and permutes
 * put the gradients back in row-major order.  Partial blocks: a
 * zero-padded tile, as for n = 8. */
typedef struct {
    __m512i s1[3], s2[3];      /* split: component c = perm2(v0, s1, v1), then v2 where m2 */
    __mmask8 m2[3];
    __m512i j1[3], j2[3];      /* join: output vector o = perm2(G0, j1, G1), then G2 where mj */
    __mmask8 mj[3];
} VN(vx_soa_idx);

/* The permute of one output vector: lane l takes element pos[l] of source
 * vector src[l] (0, 1 or 2) -- a two-source permute of sources 0 and 1,
 * then a masked one-source permute of source 2. */
VX_ATTR void VN(vx_perm3)(const int *src, const int *pos, __m512i *i1, __m512i *i2,
                          __mmask8 *m2)
{
    long long a[8], b[8];
    unsigned m = 0;
    for (int l = 0; l < 8; l++) {
        a[l] = src[l] == 0 ? pos[l] : (src[l] == 1 ? 8 + pos[l] : 0);
        b[l] = pos[l];
        if (src[l] == 2) m |= 1u << l;
    }
    *i1 = _mm512_loadu_si512(a);
    *i2 = _mm512_loadu_si512(b);
    *m2 = (__mmask8)m;
}

VX_ATTR VN(vx_soa_idx) VN(vx_soa_make)(int N)
{
    VN(vx_soa_idx) t;
    int src[8], pos[8];
    for (int c = 0; c < N; c++) {       /* component c of row r: element N r + c */
        for (int r = 0; r < 8; r++) {
            src[r] = (N * r + c) / 8;
            pos[r] = (N * r + c) % 8;
        }
        VN(vx_perm3)(src, pos, &t.s1[c], &t.s2[c], &t.m2[c]);
    }
    for (int o = 0; o < N; o++) {       /* element 8 o + l: component e % N of row e / N */
        for (int l = 0; l < 8; l++) {
            src[l] = (8 * o + l) % N;
            pos[l] = (8 * o + l) / N;
        }
        VN(vx_perm3)(src, pos, &t.j1[o], &t.j2[o], &t.mj[o]);
    }
    return t;
}

VX_ATTR void VN(vx_qf_soa_block)(const VN(vx_soa_idx) *ix, const __m512d *s, int N,
                                 const VT *restrict X, VT *restrict v, VT *restrict G)
{
    __m512d in[3], xc[3], g[3];
    for (int q = 0; q < N; q++) {
#if VDOUBLE
        in[q] = _mm512_loadu_pd(X + 8 * q);
#else
        in[q] = _mm512_cvtps_pd(_mm256_loadu_ps(X + 8 * q));
#endif
    }
    for (int c = 0; c < N; c++) {
        xc[c] = _mm512_permutex2var_pd(in[0], ix->s1[c], in[1]);
        if (N == 3)
            xc[c] = _mm512_mask_permutexvar_pd(xc[c], ix->m2[c], ix->s2[c], in[2]);
    }
    __m512d val = _mm512_setzero_pd();
    for (int i = 0; i < N; i++) {
        g[i] = _mm512_mul_pd(s[i * N], xc[0]);
        for (int j = 1; j < N; j++)
            g[i] = _mm512_fmadd_pd(s[i * N + j], xc[j], g[i]);
        val = i == 0 ? _mm512_mul_pd(xc[0], g[0]) : _mm512_fmadd_pd(xc[i], g[i], val);
    }
    if (G) {
        for (int o = 0; o < N; o++) {
            __m512d w = _mm512_permutex2var_pd(g[0], ix->j1[o], g[1]);
            if (N == 3)
                w = _mm512_mask_permutexvar_pd(w, ix->mj[o], ix->j2[o], g[2]);
#if VDOUBLE
            _mm512_storeu_pd(G + 8 * o, w);
#else
            _mm256_storeu_ps(G + 8 * o, _mm512_cvtpd_ps(w));
#endif
        }
    }
    if (v) {
        val = _mm512_mul_pd(val, _mm512_set1_pd(0.5));
#if VDOUBLE
        _mm512_storeu_pd(v, val);
#else
        _mm256_storeu_ps(v, _mm512_cvtpd_ps(val));
#endif
    }
}

VX_ATTR void VN(vx_qf_soa)(const double *restrict S, const VT *restrict X, Py_ssize_t B,
                           VT *restrict v, VT *restrict G, int N)
{
    VN(vx_soa_idx) ix = VN(vx_soa_make)(N);
    __m512d s[9];
    for (int k = 0; k < N * N; k++)
        s[k] = _mm512_set1_pd(S[k]);
    Py_ssize_t r = 0;
    for (; r + 8 <= B; r += 8)
        VN(vx_qf_soa_block)(&ix, s, N, X + r * N, v ? v + r : NULL, G ? G + r * N : NULL);
    if (r < B) {
        VT xt[24] = {0}, gt[24], vt[8];
        memcpy(xt, X + r * N, (size_t)(B - r) * N * sizeof(VT));
        VN(vx_qf_soa_block)(&ix, s, N, xt, vt, gt);
        if (G) memcpy(G + r * N, gt, (size_t)(B - r) * N * sizeof(VT));
        if (v) memcpy(v + r, vt, (size_t)(B - r) * sizeof(VT));
    }
}

VATTR static void VN(vx_qf3)(const double *restrict S, const VT *restrict X,
                             Py_ssize_t B, VT *restrict v, VT *restrict G)
{
    VN(vx_qf_soa)(S, X, B, v, G, 3);
}

VATTR static void VN(vx_qf8)(const double *restrict S, const VT *restrict X,
                             Py_ssize_t B, VT *restrict v, VT *restrict G)
{
    __m512d c[8];
    for (int j = 0; j < 8; j++)
        c[j] = _mm512_set_pd(S[56 + j], S[48 + j], S[40 + j], S[32 + j],
                             S[24 + j], S[16 + j], S[8 + j], S[j]);
    Py_ssize_t r = 0;
    for (; r + 8 <= B; r += 8)
        VN(vx_qf8_block)(c, X + r * 8, v ? v + r : NULL, G ? G + r * 8 : NULL);
    if (r < B) {
        VT xt[64] = {0}, gt[64], vt[8];
        memcpy(xt, X + r * 8, (size_t)(B - r) * 8 * sizeof(VT));
        VN(vx_qf8_block)(c, xt, vt, gt);
        if (G) memcpy(G + r * 8, gt, (size_t)(B - r) * 8 * sizeof(VT));
        if (v) memcpy(v + r, vt, (size_t)(B - r) * sizeof(VT));
    }
}

/* 9 <= n <= 64 on the AVX-512 path: g = S x_r as NV = ceil(n / 8) vectors,
 * sum over j of column j of S (from a zero-padded copy in L1) times the
 * broadcast x_rj, in order of j -- R rows at a time, so that each column
 * load serves R rows and R * NV independent FMA chains hide the latency
 * (R = 4 for NV = 2, 2 for NV = 3 or 4, 1 above).  The values of 8 rows,
 * x_r . g lane-wise then one transpose-and-add tree, as for n = 8.  One
 * pass over X and G: BLAS (G = X S^T) and a row-dot pass read X twice and
 * G once more, and with float data need double copies of X and G.  A last
 * partial block of rows goes through a zero-padded tile, so every row sees
 * the same operations (value-only, gradient-only and both agree bit for
 * bit). */
VX_ATTR void VN(vx_qfm_rows)(const double *restrict c, int NV, int R,
                             const double *restrict X, Py_ssize_t n, __mmask8 kt,
                             VT *restrict G, __m512d *P)
{
    __m512d acc[4][8];
    for (int q = 0; q < R; q++)
        for (int p = 0; p < NV; p++)
            acc[q][p] = _mm512_setzero_pd();
    for (Py_ssize_t j = 0; j < n; j++) {
        const double *cj = c + j * 8 * NV;
        __m512d cv[8];
        for (int p = 0; p < NV; p++)
            cv[p] = _mm512_load_pd(cj + 8 * p);
        for (int q = 0; q < R; q++) {
            __m512d xb = _mm512_set1_pd(X[q * n + j]);
            for (int p = 0; p < NV; p++)
                acc[q][p] = _mm512_fmadd_pd(cv[p], xb, acc[q][p]);
        }
    }
    for (int q = 0; q < R; q++) {
        __m512d s = _mm512_setzero_pd();
        for (int p = 0; p < NV; p++) {
            __mmask8 k = p == NV - 1 ? kt : (__mmask8)0xff;
            if (G) VX_ST(G + q * n + 8 * p, k, acc[q][p]);
            /* masked: the padding lanes hold 0 * x_j, NaN where x_j is inf */
            s = _mm512_mask3_fmadd_pd(_mm512_maskz_loadu_pd(k, X + q * n + 8 * p), acc[q][p],
                                      s, k);
        }
        P[q] = s;
    }
}

VX_ATTR void VN(vx_qfm_block)(const double *restrict c, int NV, const VT *restrict X,
                              Py_ssize_t n, __mmask8 kt, VT *restrict v, VT *restrict G)
{
    __m512d P[8];
#if VDOUBLE
    const double *xd = X;
#else
    /* float data: the block's 8 n elements in double first (a tile in L1),
     * not one conversion per broadcast */
    double xd[8 * 64];
    for (Py_ssize_t i = 0; i < 8 * n; i += 8)
        _mm512_storeu_pd(xd + i, VX_LD(VX_MASK8(8 * n - i), X + i));
#endif
#define VX_QFM_ROWS(q, R) \
    VN(vx_qfm_rows)(c, NV, R, xd + (q) * n, n, kt, G ? G + (q) * n : NULL, P + (q))
    if (NV <= 2) {
        VX_QFM_ROWS(0, 4); VX_QFM_ROWS(4, 4);
    } else if (NV <= 3) {
        VX_QFM_ROWS(0, 3); VX_QFM_ROWS(3, 3); VX_QFM_ROWS(6, 2);
    } else {
        VX_QFM_ROWS(0, 2); VX_QFM_ROWS(2, 2); VX_QFM_ROWS(4, 2); VX_QFM_ROWS(6, 2);
    }
#undef VX_QFM_ROWS
    if (v) {
        __m512d val = _mm512_mul_pd(vx_rowsum8_pd(P), _mm512_set1_pd(0.5));
#if VDOUBLE
        _mm512_storeu_pd(v, val);
#else
        _mm256_storeu_ps(v, _mm512_cvtpd_ps(val));
#endif
    }
}

VX_ATTR void VN(vx_qfm_nv)(const double *restrict c, int NV, const VT *restrict X,
                           Py_ssize_t B, Py_ssize_t n, VT *restrict v, VT *restrict G)
{
    __mmask8 kt = VX_MASK8(n - 8 * (NV - 1));
    Py_ssize_t r = 0;
    for (; r + 8 <= B; r += 8)
        VN(vx_qfm_block)(c, NV, X + r * n, n, kt, v ? v + r : NULL, G ? G + r * n : NULL);
    if (r < B) {
        VT xt[8 * 64] = {0}, gt[8 * 64], vt[8];
        memcpy(xt, X + r * n, (size_t)((B - r) * n) * sizeof(VT));
        VN(vx_qfm_block)(c, NV, xt, n, kt, vt, gt);
        if (G) memcpy(G + r * n, gt, (size_t)((B - r) * n) * sizeof(VT));
        if (v) memcpy(v + r, vt, (size_t)(B - r) * sizeof(VT));
    }
}

#define VX_QFM_MAX_N 64

VATTR static void VN(vx_qfm)(const double *restrict S, const VT *restrict X,
                             Py_ssize_t B, Py_ssize_t n, VT *restrict v, VT *restrict G)
{
    double c[VX_QFM_MAX_N * VX_QFM_MAX_N] __attribute__((aligned(64)));
    int NV = (int)((n + 7) / 8);
    VN(qf_columns)(S, n, 8 * NV, c);
    switch (NV) {
    case 2: VN(vx_qfm_nv)(c, 2, X, B, n, v, G); break;
    case 3: VN(vx_qfm_nv)(c, 3, X, B, n, v, G); break;
    case 4: VN(vx_qfm_nv)(c, 4, X, B, n, v, G); break;
    case 5: VN(vx_qfm_nv)(c, 5, X, B, n, v, G); break;
    case 6: VN(vx_qfm_nv)(c, 6, X, B, n, v, G); break;
    case 7: VN(vx_qfm_nv)(c, 7, X, B, n, v, G); break;
    default: VN(vx_qfm_nv)(c, 8, X, B, n, v, G); break;
    }
}
#endif /* VK_AVX512 */

#if VK_AVX2
/* 9 <= n <= 32 on the AVX2 path: the kernel of VN(vx_qfm) above with 4
 * doubles a vector (NV = ceil(n / 4) vectors a row, R = 4 rows at a time
 * for NV <= 2, 2 for NV <= 4, 1 above, within the 16 registers), the
 * values of 4 rows summed by two hadds and a lane swap.  Row tails use
 * masked loads and stores; a last partial block of rows goes through a
 * zero-padded tile. */
#define VY_ATTR static inline __attribute__((always_inline, target("arch=x86-64-v3")))
#define VY_QFM_MAX_N 32
#if VDOUBLE
#define VY_LD(k, p) _mm256_maskload_pd((p), (k))
#define VY_ST(p, k, v) _mm256_maskstore_pd((p), (k), (v))
#else
#define VY_LD(k, p) _mm256_cvtps_pd(_mm_maskload_ps((p), _mm256_castsi256_si128(               \
                                    _mm256_permutevar8x32_epi32((k), _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7)))))
#define VY_ST(p, k, v) _mm_maskstore_ps((p), _mm256_castsi256_si128(                            \
                           _mm256_permutevar8x32_epi32((k), _mm256_setr_epi32(0, 2, 4, 6, 1, 3, 5, 7))), \
                           _mm256_cvtpd_ps(v))
#endif

/* lanes l < left set, as a mask for _mm256_maskload_pd (64-bit lanes) */
VY_ATTR __m256i VN(vy_mask4)(Py_ssize_t left)
{
    __m256i idx = _mm256_setr_epi64x(0, 1, 2, 3);
    return _mm256_cmpgt_epi64(_mm256_set1_epi64x((long long)left), idx);
}

VY_ATTR void VN(vy_qfm_rows)(const double *restrict c, int NV, int R,
                             const double *restrict X, Py_ssize_t n, __m256i kt,
                             VT *restrict G, __m256d *P)
{
    __m256d acc[4][8];
    for (int q = 0; q < R; q++)
        for (int p = 0; p < NV; p++)
            acc[q][p] = _mm256_setzero_pd();
    for (Py_ssize_t j = 0; j < n; j++) {
        const double *cj = c + j * 4 * NV;
        __m256d cv[8];
        for (int p = 0; p < NV; p++)
            cv[p] = _mm256_load_pd(cj + 4 * p);
        for (int q = 0; q < R; q++) {
            __m256d xb = _mm256_broadcast_sd(X + q * n + j);
            for (int p = 0; p < NV; p++)
                acc[q][p] = _mm256_fmadd_pd(cv[p], xb, acc[q][p]);
        }
    }
    __m256i all = _mm256_set1_epi64x(-1);
    for (int q = 0; q < R; q++) {
        __m256d s = _mm256_setzero_pd();
        for (int p = 0; p < NV; p++) {
            __m256i k = p == NV - 1 ? kt : all;
            if (G) VY_ST(G + q * n + 4 * p, k, acc[q][p]);
            /* the padding lanes hold 0 * x_j, NaN where x_j is inf: zeroed */
            __m256d a = _mm256_and_pd(acc[q][p], _mm256_castsi256_pd(k));
            s = _mm256_fmadd_pd(_mm256_maskload_pd(X + q * n + 4 * p, k), a, s);
        }
        P[q] = s;
    }
}

VY_ATTR void VN(vy_qfm_block)(const double *restrict c, int NV, const VT *restrict X,
                              Py_ssize_t n, __m256i kt, VT *restrict v, VT *restrict G)
{
    __m256d P[4];
#if VDOUBLE
    const double *xd = X;
#else
    double xd[4 * VY_QFM_MAX_N];
    for (Py_ssize_t i = 0; i < 4 * n; i += 4)
        _mm256_storeu_pd(xd + i, VY_LD(VN(vy_mask4)(4 * n - i), X + i));
#endif
#define VY_QFM_ROWS(q, R) \
    VN(vy_qfm_rows)(c, NV, R, xd + (q) * n, n, kt, G ? G + (q) * n : NULL, P + (q))
    if (NV <= 2) {
        VY_QFM_ROWS(0, 4);
    } else if (NV <= 4) {
        VY_QFM_ROWS(0, 2); VY_QFM_ROWS(2, 2);
    } else {
        VY_QFM_ROWS(0, 1); VY_QFM_ROWS(1, 1); VY_QFM_ROWS(2, 1); VY_QFM_ROWS(3, 1);
    }
#undef VY_QFM_ROWS
    if (v) {
        /* [P0 sum, P1 sum, P2 sum, P3 sum]: hadd pairs, then add the halves */
        __m256d t0 = _mm256_hadd_pd(P[0], P[1]), t1 = _mm256_hadd_pd(P[2], P[3]);
        __m256d s = _mm256_add_pd(_mm256_permute2f128_pd(t0, t1, 0x20),
                                  _mm256_permute2f128_pd(t0, t1, 0x31));
        s = _mm256_mul_pd(s, _mm256_set1_pd(0.5));
#if VDOUBLE
        _mm256_storeu_pd(v, s);
#else
        _mm_storeu_ps(v, _mm256_cvtpd_ps(s));
#endif
    }
}

VY_ATTR void VN(vy_qfm_nv)(const double *restrict c, int NV, const VT *restrict X,
                           Py_ssize_t B, Py_ssize_t n, VT *restrict v, VT *restrict G)
{
    __m256i kt = VN(vy_mask4)(n - 4 * (NV - 1));
    Py_ssize_t r = 0;
    for (; r + 4 <= B; r += 4)
        VN(vy_qfm_block)(c, NV, X + r * n, n, kt, v ? v + r : NULL, G ? G + r * n : NULL);
    if (r < B) {
        VT xt[4 * VY_QFM_MAX_N] = {0}, gt[4 * VY_QFM_MAX_N], vt[4];
        memcpy(xt, X + r * n, (size_t)((B - r) * n) * sizeof(VT));
        VN(vy_qfm_block)(c, NV, xt, n, kt, vt, gt);
        if (G) memcpy(G + r * n, gt, (size_t)((B - r) * n) * sizeof(VT));
        if (v) memcpy(v + r, vt, (size_t)(B - r) * sizeof(VT));
    }
}

VATTR static void VN(vy_qfm)(const double *restrict S, const VT *restrict X,
                             Py_ssize_t B, Py_ssize_t n, VT *restrict v, VT *restrict G)
{
    double c[VY_QFM_MAX_N * VY_QFM_MAX_N] __attribute__((aligned(32)));
    int NV = (int)((n + 3) / 4);
    VN(qf_columns)(S, n, 4 * NV, c);
    switch (NV) {
    case 3: VN(vy_qfm_nv)(c, 3, X, B, n, v, G); break;
    case 4: VN(vy_qfm_nv)(c, 4, X, B, n, v, G); break;
    case 5: VN(vy_qfm_nv)(c, 5, X, B, n, v, G); break;
    case 6: VN(vy_qfm_nv)(c, 6, X, B, n, v, G); break;
    case 7: VN(vy_qfm_nv)(c, 7, X, B, n, v, G); break;
    default: VN(vy_qfm_nv)(c, 8, X, B, n, v, G); break;
    }
}
#undef VY_LD
#undef VY_ST
#endif /* VK_AVX2 */

/* Any n: the same sums in the same order, with a runtime n. */
VATTR static void VN(qf_any)(const double *restrict S, const VT *restrict X,
                             Py_ssize_t B, Py_ssize_t n, VT *restrict v,
                             VT *restrict G)
{
    for (Py_ssize_t r = 0; r < B; r++) {
        const VT *x = X + r * n;
        double val = 0.0;
        for (Py_ssize_t i = 0; i < n; i++) {
            const double *si = S + i * n;
            double gi = 0.0;
            for (Py_ssize_t j = 0; j < n; j++)
                gi += si[j] * (double)x[j];
            if (G) G[r * n + i] = (VT)gi;
            val += (double)x[i] * gi;
        }
        if (v) v[r] = (VT)(0.5 * val);
    }
}

VATTR static void VN(qf)(const double *restrict S, const VT *restrict X,
                         Py_ssize_t B, Py_ssize_t n, VT *restrict v,
                         VT *restrict G)
{
    switch (n) {
    case 1: VN(qf_n1)(S, X, B, v, G); break;
#if VK_AVX512
    /* n = 2: the portable kernel as compiled for AVX2 -- gcc's AVX-512
     * vectorisation of it, and a permute kernel like n = 3's, both measured
     * slower with B = 2e6 rows (medians of 21: 5.1-5.6 ms for this one,
     * 6.6-6.8 and 5.9-6.3 ms for those). */
    case 2: VN_AVX2(qf_n2)(S, X, B, v, G); break;
#else
    case 2: VN(qf_n2)(S, X, B, v, G); break;
#endif
#if VK_AVX512
    case 3: VN(vx_qf3)(S, X, B, v, G); break;
#else
    case 3: VN(qf_n3)(S, X, B, v, G); break;
#endif
    case 4: VN(qf_n4)(S, X, B, v, G); break;
    case 5: VN(qf_n5)(S, X, B, v, G); break;
    case 6: VN(qf_n6)(S, X, B, v, G); break;
    case 7: VN(qf_n7)(S, X, B, v, G); break;
#if VK_AVX512
    case 8: VN(vx_qf8)(S, X, B, v, G); break;
#else
    case 8: VN(qf_n8)(S, X, B, v, G); break;
#endif
    default:
#if VK_AVX512
        if (n <= VX_QFM_MAX_N) {
            VN(vx_qfm)(S, X, B, n, v, G);
            break;
        }
#elif VK_AVX2
        if (n <= VY_QFM_MAX_N) {
            VN(vy_qfm)(S, X, B, n, v, G);
            break;
        }
#endif
        VN(qf_any)(S, X, B, n, v, G);
    }
}

/* v_r = x_r . g_r / 2: finishes a value after G = X S was formed by BLAS. */
VATTR static void VN(rowdot_half)(const VT *restrict X, const VT *restrict G,
                                  Py_ssize_t B, Py_ssize_t n, VT *restrict v)
{
#if VK_AVX512
    /* 8 rows at a time: each row's products summed lane-wise in one
     * vector (masked steps of 8), the 8 rows' horizontal sums in one tree
     * (vx_rowsum8_pd): per row, a vector loop of 9 or 16 elements spends
     * more on its remainder and reduction than on the products. */
    for (Py_ssize_t r0 = 0; r0 < B; r0 += 8) {
        Py_ssize_t nr = B - r0 < 8 ? B - r0 : 8;
        __m512d P[8];
        for (Py_ssize_t r = 0; r < 8; r++) {
            P[r] = _mm512_setzero_pd();
            if (r >= nr)
                continue;
            const VT *x = X + (r0 + r) * n, *g = G + (r0 + r) * n;
            for (Py_ssize_t j = 0; j < n; j += 8) {
                __mmask8 k = VX_MASK8(n - j);
                P[r] = _mm512_fmadd_pd(VX_LD(k, x + j), VX_LD(k, g + j), P[r]);
            }
        }
        __m512d val = _mm512_mul_pd(vx_rowsum8_pd(P), _mm512_set1_pd(0.5));
        VX_ST(v + r0, (__mmask8)((1u << nr) - 1u), val);
    }
#else
    for (Py_ssize_t r = 0; r < B; r++) {
        const VT *x = X + r * n, *g = G + r * n;
        double val = 0.0;
#pragma omp simd reduction(+:val)
        for (Py_ssize_t j = 0; j < n; j++)
            val += (double)x[j] * (double)g[j];
        v[r] = (VT)(0.5 * val);
    }
#endif
}

#if VK_AVX512
#undef VX_LD
#undef VX_ST
#undef VX_EXP64
#undef VX_EXP64_SUM
#undef VX_MASK8
#endif
