package io.loraspark.train.lora;

import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * PiSSA's state on one module ({@link PissaVariant}); nothing in it trains.
 *
 * @param base the frozen weight W [out, in] whose top-r SVD initialises A and B
 * @param a0 the frozen initial A₀ [r, in], whose product with B₀ the branch subtracts
 * @param b0 the frozen initial B₀ [out, r]
 */
public record PissaState(INDArray base, INDArray a0, INDArray b0) implements ModuleState {}
