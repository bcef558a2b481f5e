package io.loraspark.train.loop;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.TestModels;
import io.loraspark.train.model.TokenRow;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.optim.LrSchedule;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Comparator;
import java.util.List;
import java.util.stream.Stream;
import org.junit.jupiter.api.extension.AfterAllCallback;
import org.junit.jupiter.api.extension.BeforeAllCallback;
import org.junit.jupiter.api.extension.ExtensionContext;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * What the fused-trainer tests set up once per class, as a JUnit extension: a small random Llama
 * checkpoint (from {@link TestModels#config}, untied) written to a temporary directory before the
 * class's tests and deleted after them, with the rows every adapter trains and is evaluated on,
 * plus the adapter and schedule shapes the tests train. Each test class keeps its own seeds and row
 * lengths. Register it as {@code @RegisterExtension static final TrainingFixture data = ...}.
 */
public final class TrainingFixture implements BeforeAllCallback, AfterAllCallback {
  private final boolean attentionBias;
  private final long modelSeed;
  private final List<TokenRow> train;
  private final List<TokenRow> eval;
  private Path dir;

  /**
   * @param attentionBias whether q, k and v have biases
   * @param modelSeed seeds the model's weights
   * @param train the training rows
   * @param eval the evaluation rows
   */
  public TrainingFixture(
      boolean attentionBias, long modelSeed, List<TokenRow> train, List<TokenRow> eval) {
    this.attentionBias = attentionBias;
    this.modelSeed = modelSeed;
    this.train = train;
    this.eval = eval;
  }

  @Override
  public void beforeAll(ExtensionContext context) throws IOException {
    dir = Files.createTempDirectory("training-fixture-");
    TestModels.writeRandom(
        modelDir(), TestModels.config("LlamaForCausalLM", false, attentionBias), modelSeed);
  }

  @Override
  public void afterAll(ExtensionContext context) throws IOException {
    try (Stream<Path> files = Files.walk(dir)) {
      for (Path p : files.sorted(Comparator.reverseOrder()).toList()) {
        Files.delete(p);
      }
    }
  }

  /** The written checkpoint's directory. */
  public Path modelDir() {
    return dir.resolve("model");
  }

  public List<TokenRow> train() {
    return train;
  }

  public List<TokenRow> eval() {
    return eval;
  }

  /** The model loaded in {@code dataType}. */
  public Transformer model(DataType dataType) {
    return new Transformer(CheckpointLoader.load(modelDir(), dataType));
  }

  /** A trainer of {@code specs} on this fixture's rows, padding with id 0. */
  public FusedTrainer trainer(Transformer model, List<AdapterSpec> specs) {
    return new FusedTrainer(model, specs, train, eval, 0);
  }

  /** Compares one adapter of a fused run with the same adapter trained alone. */
  public interface AloneCheck {
    void check(AdapterSpec spec, TrainedAdapter fused, TrainedAdapter alone);
  }

  /**
   * Trains {@code specs} together, then each alone on the same rows, and hands each adapter's two
   * results to {@code check}.
   *
   * @return the fused run's adapters, in spec order
   */
  public List<TrainedAdapter> fusedThenEachAlone(
      Transformer model, List<AdapterSpec> specs, AloneCheck check) {
    List<TrainedAdapter> fused = trainer(model, specs).run(x -> {});
    for (int k = 0; k < specs.size(); k++) {
      TrainedAdapter alone = trainer(model, List.of(specs.get(k))).run(x -> {}).get(0);
      check.check(specs.get(k), fused.get(k), alone);
    }
    return fused;
  }

  /**
   * Runs {@code specs} with a checkpoint every {@code every} steps (the newest {@code keep} kept)
   * until the job is killed at step {@code killedAt}, and returns a new trainer on the same
   * checkpoint directory, as a restarted job builds it (not yet resumed).
   */
  public FusedTrainer killedAndRestarted(
      Transformer model, List<AdapterSpec> specs, Path ckpt, int every, int keep, int killedAt) {
    FusedTrainer first = trainer(model, specs).checkpointing(ckpt, every, keep);
    assertThatThrownBy(
            () ->
                first.run(
                    x -> {
                      if (x.step() == killedAt) {
                        throw new IllegalStateException("killed");
                      }
                    }))
        .hasMessage("killed");
    return trainer(model, specs).checkpointing(ckpt, every, keep);
  }

  /** A run killed and resumed from its checkpoints, beside the same run uninterrupted. */
  public record Resumed(List<TrainedAdapter> whole, List<TrainedAdapter> resumed) {}

  /**
   * Runs {@code specs} uninterrupted, then again as {@link #killedAndRestarted} does; the restarted
   * trainer must restore {@code restored} adapters from the checkpoints, and then runs to the end.
   */
  public Resumed wholeAndResumed(
      Transformer model,
      List<AdapterSpec> specs,
      Path ckpt,
      int every,
      int keep,
      int killedAt,
      int restored) {
    List<TrainedAdapter> whole = trainer(model, specs).run(x -> {});
    FusedTrainer restarted = killedAndRestarted(model, specs, ckpt, every, keep, killedAt);
    assertThat(restarted.resume()).as("adapters restored").isEqualTo(restored);
    return new Resumed(whole, restarted.run(x -> {}));
  }

  /**
   * An adapter with alpha = 2·rank on q and v at rank 1 and on every projection otherwise (so the
   * mixes hold adapters of different module sets), no rsLoRA.
   */
  public static LoraConfig lora(LoraMethod method, int rank, double dropout) {
    List<Projection> targets =
        rank == 1 ? List.of(Projection.Q, Projection.V) : List.of(Projection.values());
    return new LoraConfig(rank, 2.0 * rank, dropout, targets, false, method);
  }

  /**
   * AdamW at lr 1e-2 (decay 0.01) with one warmup step into a cosine schedule, clipping at 1.0, no
   * gradient accumulation and no evaluation during training.
   */
  public static TrainConfig cosine(int steps, int batchSize, double lrRatio, long seed) {
    return new TrainConfig(
        steps, batchSize, 1, 1e-2, lrRatio, 0.01, 1, LrSchedule.Kind.COSINE, 1.0, 0, seed);
  }
}
