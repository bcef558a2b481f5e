/**
 * Mixed precision for the frozen base: the {@link io.loraspark.train.model.precision.Precision}
 * setting, the oneDNN probe that resolves {@code auto} per executor, and bf16×bf16→f32 matmuls over
 * the frozen projection weights packed once per executor (as PyTorch's CPU autocast sends them to
 * oneDNN). Matmul shapes: C [R, N] = A [R, K] · B [K, N], R token rows.
 */
package io.loraspark.train.model.precision;
