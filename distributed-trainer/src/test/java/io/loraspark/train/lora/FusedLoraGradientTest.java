package io.loraspark.train.lora;

import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.train.model.Batch;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.LossStats;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.TestModels;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.Workspace;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;

/**
 * Analytic LoRA gradients of the fused K-adapter step against central finite differences, in double
 * precision, on a random 2-layer GQA model with every target projection.
 */
class FusedLoraGradientTest {
  @TempDir Path tmp;

  @Test
  void fusedGradientsMatchFiniteDifferences() {
    ModelWeights base =
        CheckpointLoader.load(
            TestModels.writeRandom(tmp, TestModels.config("LlamaForCausalLM", false, true), 3),
            DataType.DOUBLE);
    ModelConfig c = base.config();
    List<Projection> all = Arrays.asList(Projection.values());
    int[] ranks = {1, 2, 4};
    double[] dropouts = {0.0, 0.3, 0.0};
    List<LoraWeights> adapters = new ArrayList<>();
    Random rnd = new Random(11);
    for (int k = 0; k < 3; k++) {
      LoraWeights w =
          LoraWeights.init(
              c,
              new LoraConfig(ranks[k], 2.0 * ranks[k], dropouts[k], all, k == 2),
              100 + k,
              DataType.DOUBLE);
      for (LoraWeights.Module m : w.modules()) {
        m.b().assign(org.nd4j.linalg.factory.Nd4j.randn(rnd.nextLong(), m.b().shape()).muli(0.3));
      }
      adapters.add(w);
    }
    // three adapters, two rows each (one row padded), T = 7; labels mask the first tokens
    int t = 7;
    List<int[]> ids = new ArrayList<>();
    List<int[]> labels = new ArrayList<>();
    for (int r = 0; r < 6; r++) {
      int len = r == 3 ? 5 : t;
      int[] row = new int[len];
      int[] lab = new int[len];
      for (int i = 0; i < len; i++) {
        row[i] = rnd.nextInt(c.vocabSize());
        lab[i] = i < 2 ? Batch.IGNORE : row[i];
      }
      ids.add(row);
      labels.add(lab);
    }
    Batch batch = Batch.padded(ids, labels, 0, new int[] {0, 0, 1, 1, 2, 2}, 3, t);
    Transformer model = new Transformer(base);
    Workspace ws = model.newWorkspace(6, t);
    FusedLora fused = new FusedLora();
    List<FusedLora.Slot> slots = new ArrayList<>();
    for (int k = 0; k < 3; k++) {
      slots.add(new FusedLora.Slot(adapters.get(k), 2 * k * t, 2 * (k + 1) * t, 500 + k));
    }
    fused.bind(slots, true, 17);
    model.forward(batch, fused, ws);
    LossStats stats = model.loss(batch, ws);
    adapters.forEach(LoraWeights::zeroGrad);
    model.backward(batch, fused, ws, stats);

    double eps = 1e-6;
    int checked = 0;
    for (int k = 0; k < 3; k++) {
      for (LoraWeights.Module m : adapters.get(k).modules()) {
        for (String which : List.of("A", "B")) {
          INDArray p = which.equals("A") ? m.a() : m.b();
          INDArray g = which.equals("A") ? m.gradA() : m.gradB();
          for (int trial = 0; trial < 2; trial++) {
            long i = rnd.nextInt((int) p.length());
            double orig = p.getDouble(i);
            p.putScalar(i, orig + eps);
            double plus = objective(model, batch, fused, ws);
            p.putScalar(i, orig - eps);
            double minus = objective(model, batch, fused, ws);
            p.putScalar(i, orig);
            double numeric = (plus - minus) / (2 * eps);
            double analytic = g.getDouble(i);
            assertThat(analytic)
                .as(
                    "adapter %d %s d%s[%d]: analytic %s vs numeric %s",
                    k, m.name(), which, i, analytic, numeric)
                .isCloseTo(
                    numeric,
                    org.assertj.core.api.Assertions.within(
                        1e-6 * Math.max(1, Math.abs(numeric)) + 1e-8));
            checked++;
          }
        }
      }
    }
    assertThat(checked).as("entries checked").isEqualTo(3 * 2 * 7 * 2 * 2);
  }

  /** Σ_k mean loss_k with the same dropout masks (same bound step). */
  private static double objective(Transformer model, Batch batch, FusedLora fused, Workspace ws) {
    model.forward(batch, fused, ws);
    LossStats s = model.loss(batch, ws);
    double sum = 0;
    for (int g = 0; g < batch.groups(); g++) {
      sum += s.mean(g);
    }
    return sum;
  }
}
