package io.loraspark.train.loop;

import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.TestModels;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.optim.LrSchedule;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.bytedeco.javacpp.Pointer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/**
 * K adapters share one frozen base: going from 1 to 8 fused adapters grows off-heap memory by about
 * 7 × (adapter weights + gradients + AdamW moments + that adapter's activations), never by a copy
 * of the base. Off-heap bytes are JavaCPP's count of live native allocations, which is where ND4J
 * keeps every tensor, read after a full GC so that only reachable buffers count.
 */
class SharedBaseMemoryTest {
  @TempDir Path tmp;

  static final String CONFIG =
      """
      {"architectures": ["LlamaForCausalLM"], "hidden_size": 512, "intermediate_size": 1376,
       "num_hidden_layers": 4, "num_attention_heads": 4, "num_key_value_heads": 2,
       "vocab_size": 512, "max_position_embeddings": 64, "rms_norm_eps": 1e-6,
       "tie_word_embeddings": false}
      """;

  /**
   * Runs the measurement in a fresh JVM: resident memory in this test JVM depends on what earlier
   * tests allocated and freed (the allocator reuses freed pages), which made it flaky.
   */
  @Test
  void eightAdaptersAddTheirOwnStateNotBaseCopies() throws Exception {
    Path out = tmp.resolve("result.txt");
    List<String> cmd = childJvm(SharedBaseMemoryTest.class, tmp.toString(), out.toString());
    Process p =
        new ProcessBuilder(cmd)
            .redirectErrorStream(true)
            .redirectOutput(tmp.resolve("log.txt").toFile())
            .start();
    assertThat(p.waitFor(5, java.util.concurrent.TimeUnit.MINUTES)).as("probe finished").isTrue();
    assertThat(p.exitValue())
        .as("probe exit, log: %s", java.nio.file.Files.readString(tmp.resolve("log.txt")))
        .isZero();
    String[] v = java.nio.file.Files.readString(out).trim().split(" ");
    long baseBytes = Long.parseLong(v[0]);
    long baseWeights = Long.parseLong(v[1]);
    long one = Long.parseLong(v[2]);
    long eight = Long.parseLong(v[3]);
    long adapterState = Long.parseLong(v[4]);
    long perAdapter = (eight - one) / 7;
    String numbers =
        String.format(
            Locale.ROOT,
            "base %.1f MB resident (%.1f MB of weights); K=1 %.1f MB, K=8 %.1f MB above it:"
                + " %.2f MB per extra adapter, of which %.2f MB adapter state",
            mb(baseBytes),
            mb(baseWeights),
            mb(one),
            mb(eight),
            mb(perAdapter),
            mb(adapterState));
    System.out.println("SharedBaseMemoryTest: " + numbers);
    assertThat(baseBytes).as(numbers).isGreaterThanOrEqualTo(baseWeights);
    assertThat(perAdapter).as(numbers).isGreaterThanOrEqualTo(adapterState);
    assertThat(perAdapter).as(numbers).isLessThan(baseWeights / 2);
  }

  /** The probe: prints "baseRss baseWeightBytes k1Rss k8Rss adapterStateBytes" to args[1]. */
  public static void main(String[] args) throws Exception {
    Path dir = Path.of(args[0]);
    Nd4j.ones(DataType.FLOAT, 4, 4).mmul(Nd4j.ones(DataType.FLOAT, 4, 4)); // natives loaded first
    long before = liveBytes();
    Transformer model =
        new Transformer(
            CheckpointLoader.load(
                TestModels.writeRandom(dir.resolve("m"), CONFIG, 1), DataType.FLOAT));
    long baseBytes = liveBytes() - before;
    List<TokenRow> rows = TestModels.rows(16, 3, 12); // lengths 5-16
    Measured one = train(model, rows, 1);
    Measured eight = train(model, rows, 8);
    java.nio.file.Files.writeString(
        Path.of(args[1]),
        baseBytes
            + " "
            + 4 * params(model.config())
            + " "
            + one.bytes
            + " "
            + eight.bytes
            + " "
            + 16L * one.adapterParams);
  }

  record Measured(long bytes, long adapterParams) {}

  /** Live off-heap bytes above the base while a K-adapter trainer (and its buffers) is alive. */
  static Measured train(Transformer model, List<TokenRow> rows, int k) {
    long before = liveBytes();
    List<AdapterSpec> specs = new ArrayList<>();
    for (int i = 0; i < k; i++) {
      specs.add(
          new AdapterSpec(
              "a" + i,
              new LoraConfig(4, 8, 0.0, List.of(Projection.values()), false),
              new TrainConfig(2, 1, 1, 1e-3, 1, 0, 0, LrSchedule.Kind.CONSTANT, 1.0, 0, i)));
    }
    FusedTrainer trainer = new FusedTrainer(model, specs, rows, List.of(), 0);
    List<TrainedAdapter> out = trainer.run(m -> {});
    long bytes = liveBytes() - before;
    if (!out.stream().allMatch(a -> a.outcome().status() == AdapterStatus.OK)) {
      throw new IllegalStateException("training failed: " + out);
    }
    long params = out.get(0).weights().parameterCount();
    java.lang.ref.Reference.reachabilityFence(trainer);
    return new Measured(bytes, params);
  }

  /** Projection weights, embeddings and head (norms are negligible). */
  static long params(io.loraspark.train.model.ModelConfig c) {
    long perLayer = 0;
    for (Projection p : Projection.values()) {
      perLayer += (long) p.inFeatures(c) * p.outFeatures(c);
    }
    return perLayer * c.numLayers() + 2L * c.vocabSize() * c.hiddenSize();
  }

  /**
   * A fresh JVM running {@code main}'s {@code main(args)} with this test JVM's classpath, system
   * properties, add-opens and heap limit: memory measured there starts from nothing.
   */
  static List<String> childJvm(Class<?> main, String... args) {
    List<String> cmd = new ArrayList<>();
    cmd.add(Path.of(System.getProperty("java.home"), "bin", "java").toString());
    cmd.addAll(
        java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments().stream()
            .filter(a -> a.startsWith("-D") || a.startsWith("--add-opens") || a.startsWith("-Xmx"))
            .toList());
    cmd.addAll(List.of("-cp", System.getProperty("java.class.path"), main.getName()));
    cmd.addAll(List.of(args));
    return cmd;
  }

  static long liveBytes() {
    for (int i = 0; i < 3; i++) {
      System.gc();
      try {
        Thread.sleep(50);
      } catch (InterruptedException e) {
        Thread.currentThread().interrupt();
      }
      Pointer.deallocateReferences();
    }
    return residentBytes();
  }

  /** Resident set size from /proc/self/statm (pages × 4096 on Linux x86-64). */
  static long residentBytes() {
    try {
      String[] f = java.nio.file.Files.readString(Path.of("/proc/self/statm")).trim().split("\\s+");
      return Long.parseLong(f[1]) * 4096;
    } catch (java.io.IOException e) {
      throw new java.io.UncheckedIOException(e);
    }
  }

  static double mb(long bytes) {
    return bytes / 1e6;
  }
}
