package io.loraspark.pipeline.ml;

import io.loraspark.train.loop.AdapterStatus;
import java.io.Serializable;

/**
 * How a {@link LoraAdapterModel}'s adapter was trained, as the training task reported it.
 *
 * @param status OK, or FAILED when a non-finite loss or gradient stopped training (the adapter then
 *     holds the weights of the last good step)
 * @param failure the step and reason when failed, else empty
 * @param steps optimizer steps done
 * @param trainLoss mean training loss of the last step (nats per token)
 * @param trainRows rows trained on
 * @param skippedRows rows skipped because their ids were null (rejected by the tokenizer)
 * @param trainableParams adapter parameters, Σ r·(in + out)
 * @param seconds wall time of the training loop
 */
public record TrainingSummary(
    AdapterStatus status,
    String failure,
    int steps,
    double trainLoss,
    long trainRows,
    long skippedRows,
    long trainableParams,
    double seconds)
    implements Serializable {}
