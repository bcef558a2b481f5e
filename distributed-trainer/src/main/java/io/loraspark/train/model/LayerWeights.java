package io.loraspark.train.model;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * One decoder layer's frozen weights, in Hugging Face's {@code [out, in]} layout (y = x W^T + b).
 * Bias arrays are {@code null} when the architecture has none. Shapes use the glossary C hidden, F
 * ffn, NH/NKV heads, HD head dim.
 *
 * @param inputNorm RMSNorm weight before attention, [C]
 * @param wq q_proj, [NH*HD, C]
 * @param bq q_proj bias, [NH*HD] or null
 * @param wk k_proj, [NKV*HD, C]
 * @param bk k_proj bias, [NKV*HD] or null
 * @param wv v_proj, [NKV*HD, C]
 * @param bv v_proj bias, [NKV*HD] or null
 * @param wo o_proj, [C, NH*HD]
 * @param bo o_proj bias, [C] or null
 * @param postNorm RMSNorm weight before the MLP, [C]
 * @param wGate gate_proj, [F, C]
 * @param wUp up_proj, [F, C]
 * @param wDown down_proj, [C, F]
 * @param bGate gate_proj bias [F] or null
 * @param bUp up_proj bias [F] or null
 * @param bDown down_proj bias [C] or null
 */
public record LayerWeights(
    INDArray inputNorm,
    INDArray wq,
    INDArray bq,
    INDArray wk,
    INDArray bk,
    INDArray wv,
    INDArray bv,
    INDArray wo,
    INDArray bo,
    INDArray postNorm,
    INDArray wGate,
    INDArray wUp,
    INDArray wDown,
    INDArray bGate,
    INDArray bUp,
    INDArray bDown) {}
