/**
 * The LoRA trainer as Spark ML stages: {@code LoraEstimator → LoraAdapterModel} and {@code
 * PerplexityEvaluator}, so {@code Pipeline}, {@code ParamGridBuilder} and {@code
 * TrainValidationSplit} drive it like any other estimator.
 */
package io.loraspark.pipeline.ml;
