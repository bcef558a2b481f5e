package io.loraspark.train.loop;

import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.model.Batch;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.TestModels;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.optim.LrSchedule;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import java.util.Random;
import java.util.concurrent.TimeUnit;
import org.bytedeco.javacpp.Pointer;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Soak: K fused adapters train for many steps on the real stories260K model, with evaluation and
 * checkpoints on the way, and memory stays flat after warm-up. Native memory that ND4J or JavaCPP
 * never frees is the classic failure of JVM deep-learning code; it shows as resident memory (RSS)
 * growing step after step (ND4J's buffers are off-heap, so RSS is where they show). The live Java
 * heap after a GC is checked too.
 *
 * <p>The test suite runs {@value #DEFAULT_STEPS} steps; {@code bench/soak.sh STEPS} runs it long.
 * Each run writes its memory curve to {@code distributed-trainer/target/soak/memory.csv}.
 */
class SoakTest {
  static final int DEFAULT_STEPS = 300;
  static final int SAMPLE_EVERY = 10;
  static final int ADAPTERS = 4;

  /**
   * Growth allowed in the median resident memory from the first to the second half after warm-up.
   * Measured over five 300-step runs on 2 shared cores: -43, -43, +1, +60 and +77 MB, so the bound
   * sits above that spread; a leak of one step's activations (a few MB here, over 150 steps) still
   * exceeds it. Whether the +60/+77 MB runs hide slow growth is an open finding
   * (docs/reliability.md); {@code bench/soak.sh 5000} is the long check.
   */
  static final long RSS_BOUND = 128L << 20;

  /** Growth allowed in the live Java heap (after GC): metrics history, nothing per-batch. */
  static final long HEAP_BOUND = 16L << 20;

  @TempDir Path tmp;

  @Test
  void memoryStaysFlatOverALongFusedRun() throws Exception {
    int steps = Integer.getInteger("lora.soak.steps", DEFAULT_STEPS);
    Path csv = Path.of("target", "soak", "memory.csv").toAbsolutePath();
    Files.createDirectories(csv.getParent());
    List<String> cmd =
        SharedBaseMemoryTest.childJvm(
            SoakTest.class, tmp.toString(), csv.toString(), Integer.toString(steps));
    Path log = tmp.resolve("log.txt");
    Process p =
        new ProcessBuilder(cmd).redirectErrorStream(true).redirectOutput(log.toFile()).start();
    long minutes = Math.max(10, steps / 100);
    if (!p.waitFor(minutes, TimeUnit.MINUTES)) {
      p.destroyForcibly();
      throw new AssertionError(
          "soak did not finish in " + minutes + " min; curve so far in " + csv);
    }
    assertThat(p.exitValue()).as("soak exit, log: %s", Files.readString(log)).isZero();

    List<long[]> samples = new ArrayList<>();
    for (String line : Files.readAllLines(csv).subList(1, Files.readAllLines(csv).size())) {
      String[] f = line.split(",");
      samples.add(new long[] {Long.parseLong(f[0]), Long.parseLong(f[1]), Long.parseLong(f[2])});
    }
    assertThat(samples).hasSizeGreaterThanOrEqualTo(12);
    // warm-up: the first quarter (buffers for every batch shape, the first checkpoints). After
    // it, resident memory after a GC still swings by ±150 MB sample to sample (freed native
    // buffers go back to the OS irregularly), so halves are compared by their medians: a leak
    // shows as the second half's median rising, noise does not.
    List<long[]> steady = samples.subList(samples.size() / 4, samples.size());
    List<long[]> first = steady.subList(0, steady.size() / 2);
    List<long[]> second = steady.subList(steady.size() / 2, steady.size());
    long rssEarly = median(first, 1);
    long rssLate = median(second, 1);
    long heapEarly = median(first, 2);
    long heapLate = median(second, 2);
    String numbers =
        String.format(
            Locale.ROOT,
            "%d steps x %d adapters: median RSS %.1f → %.1f MB (%+.2f MB), live heap %.1f → %.1f MB"
                + " (%+.2f MB), first vs second half after warm-up; curve in %s",
            steps,
            ADAPTERS,
            rssEarly / 1e6,
            rssLate / 1e6,
            (rssLate - rssEarly) / 1e6,
            heapEarly / 1e6,
            heapLate / 1e6,
            (heapLate - heapEarly) / 1e6,
            csv);
    System.out.println("SoakTest: " + numbers);
    assertThat(rssLate - rssEarly).as(numbers).isLessThan(RSS_BOUND);
    assertThat(heapLate - heapEarly).as(numbers).isLessThan(HEAP_BOUND);
  }

  private static long median(List<long[]> rows, int column) {
    long[] v = rows.stream().mapToLong(r -> r[column]).sorted().toArray();
    return v[v.length / 2];
  }

  /** The soak itself, in a fresh JVM: args are a work dir, the CSV to write and the step count. */
  public static void main(String[] args) throws IOException {
    Path dir = Path.of(args[0]);
    Path csv = Path.of(args[1]);
    int steps = Integer.parseInt(args[2]);
    Transformer model = new Transformer(CheckpointLoader.load(TestModels.STORIES, DataType.FLOAT));
    int vocab = model.config().vocabSize();
    List<TokenRow> train = rows(256, 1, vocab);
    List<TokenRow> eval = rows(16, 2, vocab);
    List<AdapterSpec> specs = new ArrayList<>();
    for (int i = 0; i < ADAPTERS; i++) {
      specs.add(
          new AdapterSpec(
              "soak" + i,
              new LoraConfig(
                  2 + 2 * i, 8, i % 2 == 0 ? 0.0 : 0.1, List.of(Projection.values()), false),
              new TrainConfig(
                  steps, 2, 1, 1e-3, 4, 0.01, 10, LrSchedule.Kind.COSINE, 1.0, 100, 7 + i)));
    }
    Files.writeString(csv, "step,rss_bytes,heap_bytes\n");
    FusedTrainer trainer =
        new FusedTrainer(model, specs, train, eval, 0)
            .checkpointing(dir.resolve("checkpoints"), 100, 2);
    List<TrainedAdapter> done =
        trainer.run(
            m -> {
              if (m.adapterId().equals("soak0") && m.step() % SAMPLE_EVERY == 0) {
                try { // appended as it goes: a run that times out still shows its curve
                  Files.writeString(csv, sample(m.step()), StandardOpenOption.APPEND);
                } catch (IOException e) {
                  throw new java.io.UncheckedIOException(e);
                }
              }
            });
    for (TrainedAdapter a : done) {
      if (a.outcome().status() != AdapterStatus.OK) {
        throw new IllegalStateException("adapter " + a + " did not finish");
      }
    }
  }

  private static String sample(int step) {
    for (int i = 0; i < 2; i++) {
      System.gc();
      Pointer.deallocateReferences();
    }
    Runtime rt = Runtime.getRuntime();
    return step
        + ","
        + SharedBaseMemoryTest.residentBytes()
        + ","
        + (rt.totalMemory() - rt.freeMemory())
        + "\n";
  }

  /**
   * Token rows of 48 tokens, the first third of each masked as a prompt. One length on purpose:
   * with lengths of 16-64 tokens the resident memory swung between 525 and 842 MB from sample to
   * sample and the halves' medians moved by -43 MB in one run and +77 MB in another, too noisy to
   * bound; with one length it stays within about 600-700 MB after warm-up.
   */
  static List<TokenRow> rows(int n, long seed, int vocab) {
    Random rnd = new Random(seed);
    List<TokenRow> out = new ArrayList<>();
    for (int i = 0; i < n; i++) {
      int len = 48;
      int[] ids = new int[len];
      int[] labels = new int[len];
      for (int t = 0; t < len; t++) {
        ids[t] = 1 + rnd.nextInt(vocab - 1);
        labels[t] = t < len / 3 ? Batch.IGNORE : ids[t];
      }
      out.add(new TokenRow(ids, labels));
    }
    return out;
  }
}
