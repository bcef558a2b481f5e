package io.loraspark.pipeline.cli;

import com.fasterxml.jackson.databind.node.ObjectNode;
import io.loraspark.train.bench.BenchResult;
import io.loraspark.train.bench.BenchSpec;
import io.loraspark.train.bench.DecodeBench;
import io.loraspark.train.bench.LoraBench;
import io.loraspark.train.bench.SyntheticModel;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.precision.Precision;
import io.loraspark.train.model.quant.BaseQuant;
import java.util.concurrent.Callable;
import picocli.CommandLine.Command;
import picocli.CommandLine.Option;

/**
 * {@code bench}: LoRA training throughput of the engine on a random model of a given shape, the
 * number compared with the PyTorch peer baseline ({@code bench/compare.sh}). Defaults are the
 * 576-hidden, 4-layer benchmark shape of docs/benchmarks.md.
 */
@Command(
    name = "bench",
    mixinStandardHelpOptions = true,
    description =
        "Trains LoRA on a synthetic Llama-family model (or --model's weights) and prints one JSON line: tokens/s, step"
            + " split (forward/backward/optimizer, median ms), MFU against a GEMM peak measured in"
            + " the same process, peak resident memory vs its estimate, and the OpenBLAS kernel.")
final class BenchCommand implements Callable<Integer> {
  @picocli.CommandLine.Spec picocli.CommandLine.Model.CommandSpec spec;

  @Option(names = "--hidden", defaultValue = "576", description = "C (default: ${DEFAULT-VALUE})")
  int hidden;

  @Option(names = "--layers", defaultValue = "4", description = "L (default: ${DEFAULT-VALUE})")
  int layers;

  @Option(names = "--heads", defaultValue = "9", description = "NH (default: ${DEFAULT-VALUE})")
  int heads;

  @Option(names = "--kv-heads", defaultValue = "3", description = "NKV (default: ${DEFAULT-VALUE})")
  int kvHeads;

  @Option(names = "--ffn", defaultValue = "1536", description = "F (default: ${DEFAULT-VALUE})")
  int ffn;

  @Option(names = "--vocab", defaultValue = "8192", description = "V (default: ${DEFAULT-VALUE})")
  int vocab;

  @Option(names = "--tied", description = "lm_head shares the embedding")
  boolean tied;

  @Option(
      names = "--batch",
      defaultValue = "4",
      description = "B, rows per adapter (default: ${DEFAULT-VALUE})")
  int batch;

  @Option(names = "--seq", defaultValue = "256", description = "T (default: ${DEFAULT-VALUE})")
  int seq;

  @Option(names = "--rank", defaultValue = "8", description = "LoRA r (default: ${DEFAULT-VALUE})")
  int rank;

  @Option(
      names = "--targets",
      defaultValue = "q,k,v,o,gate,up,down",
      description = "adapted projections (default: ${DEFAULT-VALUE})")
  String targets;

  @Option(
      names = "--adapters",
      description =
          "K adapters trained fused, B rows each (default 1); with --decode, K random adapters"
              + " the streams take round-robin (default 0: the base)")
  Integer adapters;

  @Option(
      names = "--decode",
      description =
          "measure KV-cached decoding instead of training: decode_tokens_per_s (all streams,"
              + " decode steps only), per_stream_tokens_per_s, prefill_ms, first_token_ms")
  boolean decode;

  @Option(
      names = "--model",
      description =
          "a Hugging Face checkpoint to train (or with --decode, decode) on instead of synthetic"
              + " weights; its config.json sets the shape, shape flags given must match it")
  java.nio.file.Path model;

  @Option(
      names = "--prompt-tokens",
      defaultValue = "16",
      description = "with --decode: P, seeded random prompt ids (default: ${DEFAULT-VALUE})")
  int promptTokens;

  @Option(
      names = "--new-tokens",
      defaultValue = "256",
      description = "with --decode: N tokens per stream, EOS ignored (default: ${DEFAULT-VALUE})")
  int newTokens;

  @Option(
      names = "--streams",
      defaultValue = "1",
      description = "with --decode: S concurrent streams (default: ${DEFAULT-VALUE})")
  int streams;

  @Option(
      names = "--write-model",
      description =
          "write the synthetic model of the shape flags as a Hugging Face checkpoint into DIR"
              + " (for a peer to decode the same weights) and exit")
  java.nio.file.Path writeModel;

  @Option(
      names = "--tokenizer",
      description =
          "with --write-model: copy this tokenizer into the model and size V to it (a Hugging Face"
              + " tokenizer directory, or vocab.json + merges.txt such as fixtures/tokenizers/gpt2)"
              + " so that serve and generate can run on it")
  java.nio.file.Path tokenizer;

  @Option(
      names = "--write-adapters",
      description =
          "write --adapters K random rank-R LoRA adapters on all seven targets for the model (--model"
              + " or the shape flags) as PEFT directories bench-0 .. bench-K-1 in DIR and exit")
  java.nio.file.Path writeAdapters;

  @Option(
      names = "--threads",
      defaultValue = "2",
      description =
          "OpenBLAS threads of the GEMMs and threads of the fused Java kernels (default: ${DEFAULT-VALUE})")
  int threads;

  @Option(
      names = "--op-threads",
      defaultValue = "1",
      description =
          "ND4J/OpenMP threads of the other ops; 1 mirrors PyTorch's fastest 2-core setting"
              + " (default: ${DEFAULT-VALUE})")
  int opThreads;

  @Option(
      names = "--steps",
      defaultValue = "10",
      description = "timed steps (default: ${DEFAULT-VALUE})")
  int steps;

  @Option(
      names = "--warmup",
      defaultValue = "2",
      description = "untimed steps first (default: ${DEFAULT-VALUE})")
  int warmup;

  @Option(names = "--seed", defaultValue = "0", description = "seed (default: ${DEFAULT-VALUE})")
  long seed;

  @Option(
      names = "--base-quant",
      defaultValue = "none",
      description =
          "store the base's projections as none, int8 or nf4, dequantised per GEMM (default:"
              + " ${DEFAULT-VALUE})")
  String baseQuant;

  @Option(
      names = "--recompute-activations",
      description =
          "recompute each layer's activations during backward (keeps one layer's instead of"
              + " every layer's; more compute)")
  boolean recompute;

  @Option(
      names = "--precision",
      defaultValue = "auto",
      description =
          "the GEMMs of the frozen weights and attention: fp32, bf16 (oneDNN) or auto (bf16"
              + " only with AMX);"
              + " with --decode: bf16 weights in the decode kernels, auto is fp32"
              + " (default: ${DEFAULT-VALUE})")
  String precision;

  @Override
  public Integer call() {
    if (tokenizer != null && (writeModel == null || model != null)) {
      throw new IllegalArgumentException(
          "--tokenizer goes with --write-model and the shape flags (not --model)");
    }
    if (tokenizer != null && spec.commandLine().getParseResult().hasMatchedOption("--vocab")) {
      throw new IllegalArgumentException(
          "--vocab and --tokenizer: the tokenizer sets V; leave --vocab out");
    }
    if (writeModel != null || writeAdapters != null || decode) {
      return decodeOrWrite();
    }
    if (model != null) {
      takeShapeOf(ModelConfig.load(model));
    }
    BenchResult result = LoraBench.run(shapeSpec(), model);
    spec.commandLine().getOut().println(result.toJson());
    spec.commandLine().getOut().flush();
    return Main.OK;
  }

  /** The training bench's spec from the options (its model config serves every mode). */
  private BenchSpec shapeSpec() {
    return new BenchSpec(
        hidden,
        layers,
        heads,
        kvHeads,
        ffn,
        vocab,
        tied,
        batch,
        seq,
        rank,
        Projection.parseList(targets),
        adapters == null ? 1 : adapters,
        threads,
        opThreads,
        steps,
        warmup,
        seed,
        BaseQuant.parse(baseQuant),
        recompute,
        Precision.parse(precision));
  }

  /**
   * Sets the shape options not given on the command line from the checkpoint's config; those given
   * are left for {@link LoraBench#run(BenchSpec, java.nio.file.Path)} to check against it.
   */
  private void takeShapeOf(ModelConfig c) {
    picocli.CommandLine.ParseResult given = spec.commandLine().getParseResult();
    hidden = given.hasMatchedOption("--hidden") ? hidden : c.hiddenSize();
    layers = given.hasMatchedOption("--layers") ? layers : c.numLayers();
    heads = given.hasMatchedOption("--heads") ? heads : c.numHeads();
    kvHeads = given.hasMatchedOption("--kv-heads") ? kvHeads : c.numKvHeads();
    ffn = given.hasMatchedOption("--ffn") ? ffn : c.intermediateSize();
    vocab = given.hasMatchedOption("--vocab") ? vocab : c.vocabSize();
    tied = given.hasMatchedOption("--tied") ? tied : c.tieWordEmbeddings();
  }

  /** {@code --write-model}, {@code --write-adapters} or {@code --decode}. */
  private Integer decodeOrWrite() {
    ModelWeights weights;
    String name;
    TokenizerCopy copy = null;
    if (model != null) {
      weights = CheckpointLoader.load(model);
      name = model.toString();
    } else {
      if (tokenizer != null) {
        copy = new TokenizerCopy(tokenizer);
        vocab = copy.vocabSize();
      }
      BenchSpec shape = shapeSpec(); // its config has max positions max(T, 2048)
      weights = SyntheticModel.create(shape.modelConfig(), seed);
      name = "synthetic";
    }
    if (writeAdapters != null) {
      int k = adapters == null ? 1 : adapters;
      DecodeBench.writeAdapters(weights, writeAdapters, k, rank, seed);
      spec.commandLine()
          .getOut()
          .println("{\"adapters\": \"" + writeAdapters + "\", \"count\": " + k + "}");
      return Main.OK;
    }
    if (writeModel != null) {
      DecodeBench.writeModel(weights, writeModel);
      if (copy != null) {
        copy.writeInto(writeModel);
      }
      spec.commandLine().getOut().println("{\"model\": \"" + writeModel + "\"}");
      return Main.OK;
    }
    DecodeBench.Spec s =
        new DecodeBench.Spec(
            promptTokens,
            newTokens,
            streams,
            adapters == null ? 0 : adapters,
            rank,
            threads,
            warmup,
            seed,
            Precision.parse(precision));
    ObjectNode result = DecodeBench.run(weights, name, s);
    spec.commandLine().getOut().println(result);
    spec.commandLine().getOut().flush();
    return Main.OK;
  }
}
