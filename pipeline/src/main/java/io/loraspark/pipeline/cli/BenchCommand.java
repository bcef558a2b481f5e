package io.loraspark.pipeline.cli;

import io.loraspark.train.bench.BenchResult;
import io.loraspark.train.bench.BenchSpec;
import io.loraspark.train.bench.LoraBench;
import io.loraspark.train.model.Projection;
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
        "Trains LoRA on a synthetic Llama-family model and prints one JSON line: tokens/s, step"
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
      defaultValue = "1",
      description = "K adapters trained fused, B rows each (default: ${DEFAULT-VALUE})")
  int adapters;

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

  @Override
  public Integer call() {
    BenchSpec s =
        new BenchSpec(
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
            adapters,
            threads,
            opThreads,
            steps,
            warmup,
            seed,
            BaseQuant.parse(baseQuant),
            recompute);
    BenchResult result = LoraBench.run(s);
    spec.commandLine().getOut().println(result.toJson());
    spec.commandLine().getOut().flush();
    return Main.OK;
  }
}
