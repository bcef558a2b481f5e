package io.loraspark.train.loop;

import io.loraspark.train.lora.LoraWeights;

/**
 * One trained adapter: the artifact ({@code weights}, executor memory, never serialised) and its
 * {@link AdapterOutcome} (what became of it, which crosses Spark and is journaled). Two types
 * because the weights are ND4J buffers that must not travel with the outcome.
 *
 * @param weights the weights of its last good step (of its last step when {@code outcome} is OK)
 */
public record TrainedAdapter(AdapterSpec spec, LoraWeights weights, AdapterOutcome outcome) {}
