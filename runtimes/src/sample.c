/*
 * edgeq_sample (edgeq.h): greedy, or top-k / top-p sampling at a temperature with a counter-based
 * random draw, so the same (seed, position) picks the same token on every device and in the numpy
 * mirror (edgeq/llm/sampling.py). The candidates live on the stack: nothing is allocated.
 */
#include <math.h>

#include "internal.h"

/* splitmix64 of seed and position -> a uniform float in [0, 1) with 24 bits (exact in fp32). */
static float uniform(uint64_t seed, uint64_t position) {
    uint64_t z = seed + (position + 1) * 0x9E3779B97F4A7C15ull;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z = z ^ (z >> 31);
    return (float)(z >> 40) * (1.0f / 16777216.0f);
}

edgeq_status_t edgeq_sample(const float *logits, uint32_t vocab, const edgeq_sampler_t *s, uint64_t position,
                            int32_t *token) {
    int32_t ids[EDGEQ_SAMPLE_MAX_K];
    float p[EDGEQ_SAMPLE_MAX_K], total = 0.0f, cum, r;
    uint32_t k, n = 0, i, j, keep;
    if (!logits || !s || !token || vocab == 0 || !(s->top_p > 0.0f && s->top_p <= 1.0f)) return EDGEQ_E_ARG;
    if (!(s->temperature > 0.0f)) { /* greedy */
        for (i = 1, j = 0; i < vocab; i++)
            if (logits[i] > logits[j]) j = i;
        *token = (int32_t)j;
        return EDGEQ_OK;
    }
    k = s->top_k == 0 || s->top_k > EDGEQ_SAMPLE_MAX_K ? EDGEQ_SAMPLE_MAX_K : s->top_k;
    k = k < vocab ? k : vocab;
    for (i = 0; i < vocab; i++) { /* insertion into the k best, larger logit first, lower id first on ties */
        if (n == k && !(logits[i] > logits[ids[n - 1]])) continue;
        j = n < k ? n++ : n - 1;
        for (; j > 0 && logits[i] > logits[ids[j - 1]]; j--) ids[j] = ids[j - 1];
        ids[j] = (int32_t)i;
    }
    for (i = 0; i < n; i++) {
        p[i] = expf((logits[ids[i]] - logits[ids[0]]) / s->temperature);
        total += p[i];
    }
    for (keep = 0, cum = 0.0f; keep < n;) { /* the smallest prefix holding top_p of the mass */
        cum += p[keep++];
        if (cum >= s->top_p * total) break;
    }
    r = uniform(s->seed, position) * cum;
    for (i = 0, total = 0.0f; i + 1 < keep; i++) {
        total += p[i];
        if (r < total) break;
    }
    *token = ids[i];
    return EDGEQ_OK;
}
