package io.loraspark.train.lora;

import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.train.model.Batch;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.LossStats;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.TestModels;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.Workspace;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.factory.Nd4j;

/**
 * Activation recomputation must be invisible in the numbers: the real stories260K checkpoint (5
 * layers), five adapters of different methods fused (LoRA with dropout, DoRA, LoRA-FA, VeRA,
 * AdaLoRA), trained weights moved off their init, one step with and one without recomputation. The
 * loss and every gradient must agree bit for bit, since the recomputed forward runs the same
 * operations on the same inputs (and regenerates the same dropout masks); and the workspace must
 * hold one layer's activations instead of five.
 */
class RecomputeTest {
  private static final int T = 24;

  private static final List<LoraConfig> CONFIGS =
      List.of(
          new LoraConfig(4, 8, 0.2, Arrays.asList(Projection.values()), false),
          new LoraConfig(2, 4, 0.1, List.of(Projection.Q, Projection.V), false, LoraMethod.DORA),
          new LoraConfig(4, 8, 0.0, Arrays.asList(Projection.values()), false, LoraMethod.LORA_FA),
          new LoraConfig(4, 8, 0.0, Arrays.asList(Projection.values()), false, LoraMethod.VERA),
          new LoraConfig(2, 4, 0.0, Arrays.asList(Projection.values()), false, LoraMethod.ADALORA));

  @Test
  void recomputedStepGivesTheSameLossAndGradientsBitForBit() {
    ModelWeights base = CheckpointLoader.load(TestModels.STORIES, DataType.FLOAT);
    Transformer model = new Transformer(base);
    List<LoraWeights> adapters = new ArrayList<>();
    for (int k = 0; k < CONFIGS.size(); k++) {
      adapters.add(moved(LoraWeights.init(base, CONFIGS.get(k), 10 + k, DataType.FLOAT), k));
    }
    Batch batch = batch(base.config().vocabSize(), adapters.size());
    FusedLora fused = new FusedLora();
    List<FusedLora.Slot> slots = new ArrayList<>();
    for (int k = 0; k < adapters.size(); k++) {
      slots.add(new FusedLora.Slot(adapters.get(k), 2 * k * T, 2 * (k + 1) * T, 50 + k));
    }

    Workspace kept = model.newWorkspace(2 * adapters.size(), T);
    Workspace recomputed = model.newWorkspace(2 * adapters.size(), T, true);
    LossStats keptLoss = step(model, fused, slots, batch, kept, adapters);
    List<int[]> keptGrads = grads(adapters);
    LossStats recomputedLoss = step(model, fused, slots, batch, recomputed, adapters);
    List<int[]> recomputedGrads = grads(adapters);

    assertThat(recomputedLoss.nllSums()).isEqualTo(keptLoss.nllSums());
    for (int i = 0; i < keptGrads.size(); i++) {
      assertThat(recomputedGrads.get(i)).as("gradient %d", i).isEqualTo(keptGrads.get(i));
    }
    assertThat(keptGrads.stream().anyMatch(g -> Arrays.stream(g).anyMatch(b -> b != 0)))
        .as("the step produced gradients")
        .isTrue();

    int layers = base.config().numLayers();
    long perLayer = (kept.bytes() - recomputed.bytes()) / (layers - 1);
    assertThat(perLayer).as("one layer's saved activations").isPositive();
    assertThat(recomputed.bytes())
        .as("a recomputing workspace keeps one layer's activations")
        .isEqualTo(kept.bytes() - (layers - 1) * perLayer);
    assertThat(recomputed.recomputes()).isTrue();
    assertThat(kept.recomputes()).isFalse();
  }

  private static LossStats step(
      Transformer model,
      FusedLora fused,
      List<FusedLora.Slot> slots,
      Batch batch,
      Workspace ws,
      List<LoraWeights> adapters) {
    adapters.forEach(LoraWeights::zeroGrad);
    fused.bind(slots, true, 3);
    model.forward(batch, fused, ws);
    LossStats stats = model.loss(batch, ws);
    model.backward(batch, fused, ws, stats);
    return stats;
  }

  /** Every trainable moved by U(−0.05, 0.05), so no branch is zero (B and λ_b start at 0). */
  private static LoraWeights moved(LoraWeights w, long seed) {
    SplittableRandom rnd = new SplittableRandom(seed);
    for (LoraWeights.Trainable t : w.trainables()) {
      float[] noise = new float[(int) t.value().length()];
      for (int i = 0; i < noise.length; i++) {
        noise[i] = (float) rnd.nextDouble(-0.05, 0.05);
      }
      t.value().addi(Nd4j.create(noise, t.value().shape(), 'c'));
    }
    return w;
  }

  /** Two rows per adapter, one of them shorter (padding in play), the first two labels unscored. */
  private static Batch batch(int vocab, int groups) {
    SplittableRandom rnd = new SplittableRandom(7);
    List<int[]> ids = new ArrayList<>();
    List<int[]> labels = new ArrayList<>();
    int[] rowGroups = new int[2 * groups];
    for (int r = 0; r < 2 * groups; r++) {
      int len = r % 2 == 1 ? T - 3 : T;
      int[] row = rnd.ints(len, 1, vocab).toArray();
      int[] lab = row.clone();
      lab[0] = Batch.IGNORE;
      lab[1] = Batch.IGNORE;
      ids.add(row);
      labels.add(lab);
      rowGroups[r] = r / 2;
    }
    return Batch.padded(ids, labels, 0, rowGroups, groups, T);
  }

  private static List<int[]> grads(List<LoraWeights> adapters) {
    List<int[]> out = new ArrayList<>();
    for (LoraWeights w : adapters) {
      for (LoraWeights.Trainable t : w.trainables()) {
        float[] g = t.grad().dup('c').data().asFloat();
        int[] bits = new int[g.length];
        for (int i = 0; i < g.length; i++) {
          bits[i] = Float.floatToRawIntBits(g[i]);
        }
        out.add(bits);
      }
    }
    return out;
  }
}
