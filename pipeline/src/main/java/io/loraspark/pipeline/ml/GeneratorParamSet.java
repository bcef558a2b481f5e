package io.loraspark.pipeline.ml;

import java.io.Serializable;
import org.apache.spark.ml.param.DoubleParam;
import org.apache.spark.ml.param.IntParam;
import org.apache.spark.ml.param.LongParam;
import org.apache.spark.ml.param.Param;
import org.apache.spark.ml.param.Params;
import org.apache.spark.ml.param.StringArrayParam;

/**
 * The param objects of one {@link LoraGenerator}, created once per generator with its uid, their
 * checks and their defaults (those of {@code generate}: greedy, 64 new tokens).
 */
public record GeneratorParamSet(
    Param<String> modelPath,
    Param<String> promptCol,
    Param<String> adapterCol,
    Param<String> adapterRoot,
    Param<String> outputCol,
    IntParam maxNewTokens,
    DoubleParam temperature,
    IntParam topK,
    DoubleParam topP,
    LongParam seed,
    StringArrayParam stopStrings,
    LongParam adapterCacheBytes,
    IntParam maxBatchRows)
    implements Serializable {

  /** The params of {@code owner}, with their defaults set on it. */
  static GeneratorParamSet create(Params owner) {
    GeneratorParamSet p =
        new GeneratorParamSet(
            path(owner, "modelPath", "base Hugging Face checkpoint directory (with its tokenizer)"),
            column(owner, "promptCol", "input column: prompt text"),
            column(
                owner,
                "adapterCol",
                "input column: adapter name under adapterRoot per row; null or empty: the base"
                    + " model (unset: every row uses the base)"),
            path(
                owner,
                "adapterRoot",
                "directory the adapter names resolve under; required with adapterCol"),
            column(owner, "outputCol", "output column: generated text"),
            ints(owner, "maxNewTokens", "the most tokens generated per row", 0),
            new DoubleParam(
                owner,
                "temperature",
                "sampling temperature; 0 is greedy",
                ParamChecks.doubles("temperature", v -> v >= 0, ">= 0")),
            ints(owner, "topK", "sample from the k most likely tokens; 0: all", 0),
            new DoubleParam(
                owner,
                "topP",
                "nucleus sampling: the smallest set of tokens whose probability reaches topP; 1:"
                    + " all",
                ParamChecks.doubles("topP", v -> v > 0 && v <= 1, "in (0, 1]")),
            new LongParam(owner, "seed", "root seed; a row's seed is rowSeed(seed, prompt)"),
            new StringArrayParam(
                owner,
                "stopStrings",
                "a row's text ends before the first of these it contains",
                ParamChecks.stringArrays(
                    "stopStrings", s -> s != null && !s.isEmpty(), "strings that are not empty")),
            new LongParam(
                owner,
                "adapterCacheBytes",
                "bytes of adapter tensors each executor JVM keeps in RAM per checkpoint and root",
                ParamChecks.longs("adapterCacheBytes", 1)),
            ints(
                owner,
                "maxBatchRows",
                "the most requests a partition decodes at once (rows per step)",
                1));
    owner.setDefault(p.promptCol, LoraGenerator.PROMPT_COL_DEFAULT);
    owner.setDefault(p.outputCol, LoraGenerator.OUTPUT_COL_DEFAULT);
    owner.setDefault(p.maxNewTokens, LoraGenerator.MAX_NEW_TOKENS_DEFAULT);
    owner.setDefault(p.temperature, 0.0);
    owner.setDefault(p.topK, 0);
    owner.setDefault(p.topP, 1.0);
    owner.setDefault(p.seed, 0L);
    owner.setDefault(p.stopStrings, new String[0]);
    owner.setDefault(p.adapterCacheBytes, LoraGenerator.ADAPTER_CACHE_BYTES_DEFAULT);
    owner.setDefault(p.maxBatchRows, LoraGenerator.MAX_BATCH_ROWS_DEFAULT);
    return p;
  }

  /** A directory param, readable at the same path on the driver and every executor. */
  private static Param<String> path(Params owner, String name, String doc) {
    return new Param<>(
        owner,
        name,
        doc + ", readable on every executor",
        ParamChecks.strings(name, s -> !s.isBlank(), "a directory"));
  }

  private static Param<String> column(Params owner, String name, String doc) {
    return new Param<>(owner, name, doc, ParamChecks.column(name));
  }

  private static IntParam ints(Params owner, String name, String doc, int min) {
    return new IntParam(owner, name, doc, ParamChecks.ints(name, min, Integer.MAX_VALUE));
  }
}
