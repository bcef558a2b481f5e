/**
 * A quantized frozen base (the QLoRA idea, Dettmers et al. 2023, arXiv:2305.14314, for CPU
 * executors): the seven projection weights of every layer held as int8 or NF4 codes and dequantised
 * into a reused float32 buffer just before each GEMM, so memory holds the packed form only and an
 * executor fits a larger base. Embeddings, norms and lm_head stay float32, as bitsandbytes leaves
 * them.
 */
package io.loraspark.train.model.quant;
