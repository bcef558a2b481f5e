package io.loraspark.train.model.precision;

import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.train.lora.FusedLora;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.model.Batch;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.Gemm;
import io.loraspark.train.model.Kernels;
import io.loraspark.train.model.LossStats;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.TestModels;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.Workspace;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.AfterAll;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;
import org.nd4j.nativeblas.NativeOpsHolder;

/**
 * A fused step of three adapters (ranks 1, 2, 4; one with dropout, one LoRA-FA; 2,048 tokens each)
 * on stories260K with the adapters' products through oneDNN's f32 matmul, against the same step
 * through ND4J's: the loss and every module's dA and dB agree to 1e-4 of their largest magnitude
 * (both f32, summed in other orders), and the gradients are not zero.
 */
class FusedLoraOneDnnTest {
  // 2,048 tokens per adapter: dB = s·dyᵀ·u sums over them, long enough for oneDNN to split that
  // sum over threads
  private static final int ROWS = 16;
  private static final int T = 128;
  private static int kernelThreads;

  @BeforeAll
  static void threadCountsThatDiffer() {
    kernelThreads = Kernels.threads();
    // oneDNN's calls on one thread while the calling thread's OpenMP count is two (ND4J's ops on
    // two): a primitive made under that count and run on one thread lost its other thread's share
    assertThat(OneDnn.probe().failure()).as("oneDNN (and ND4J before it) must load").isEmpty();
    Kernels.threads(1);
    NativeOpsHolder.getInstance().getDeviceNativeOps().setOmpNumThreads(2);
  }

  @AfterAll
  static void threadCountsBack() {
    Kernels.threads(kernelThreads);
    NativeOpsHolder.getInstance()
        .getDeviceNativeOps()
        .setOmpNumThreads(Math.max(1, Nd4j.getEnvironment().maxThreads()));
  }

  @Test
  void adapterGradientsMatchNd4jsGemms() {
    ModelWeights base = CheckpointLoader.load(TestModels.STORIES);
    Transformer model = new Transformer(base);
    List<LoraWeights> viaNd4j = adapters(base);
    List<LoraWeights> viaOneDnn = adapters(base);
    double lossNd4j = step(model, Gemm.nd4j(), viaNd4j);
    double lossOneDnn = step(model, OneDnnF32Gemm.INSTANCE, viaOneDnn);
    assertThat(Math.abs(lossOneDnn - lossNd4j) / lossNd4j).isLessThan(1e-5);
    for (int k = 0; k < 3; k++) {
      for (LoraWeights.Module m : viaNd4j.get(k).modules()) {
        LoraWeights.Module o = viaOneDnn.get(k).module(m.layer(), m.proj());
        assertClose(o.gradB(), m.gradB(), k + " " + m.name() + " dB");
        if (m.gradA() != null) {
          assertClose(o.gradA(), m.gradA(), k + " " + m.name() + " dA");
        }
      }
    }
  }

  /**
   * bf16 steps (packed base, bf16 attention, oneDNN adapter products) on two threads at once give
   * each thread the bits of the same step run alone: oneDNN's primitives are per thread, since a
   * thread's primitives share one scratchpad.
   */
  @Test
  void bf16StepsOnTwoThreadsAtOnceGiveTheBitsOfOneAlone() throws Exception {
    Transformer model = Precision.BF16.model(CheckpointLoader.load(TestModels.STORIES));
    ModelWeights base = model.weights();
    List<LoraWeights> alone = adapters(base);
    double lossAlone = step(model, model.adapterGemm(), alone);
    List<List<LoraWeights>> sets = List.of(adapters(base), adapters(base));
    double[] losses = new double[2];
    List<Thread> threads = new ArrayList<>();
    for (int i = 0; i < 2; i++) {
      int which = i;
      threads.add(
          new Thread(
              () -> {
                Kernels.threads(1);
                for (int rep = 0; rep < 2; rep++) {
                  List<LoraWeights> set = which == 0 ? sets.get(0) : sets.get(1);
                  zeroGradients(set);
                  losses[which] = step(model, model.adapterGemm(), set);
                }
              }));
    }
    threads.forEach(Thread::start);
    for (Thread t : threads) {
      t.join();
    }
    for (int i = 0; i < 2; i++) {
      assertThat(losses[i]).as("thread %d's loss", i).isEqualTo(lossAlone);
      for (int k = 0; k < 3; k++) {
        for (LoraWeights.Module m : alone.get(k).modules()) {
          LoraWeights.Module o = sets.get(i).get(k).module(m.layer(), m.proj());
          assertThat(o.gradB().data().asFloat())
              .as("thread %d, adapter %d, %s dB", i, k, m.name())
              .containsExactly(m.gradB().data().asFloat());
        }
      }
    }
  }

  private static void zeroGradients(List<LoraWeights> adapters) {
    for (LoraWeights w : adapters) {
      for (LoraWeights.Module m : w.modules()) {
        m.gradB().assign(0);
        if (m.gradA() != null) {
          m.gradA().assign(0);
        }
      }
    }
  }

  private static List<LoraWeights> adapters(ModelWeights base) {
    int[] ranks = {1, 2, 4};
    double[] dropouts = {0.0, 0.2, 0.0};
    List<LoraWeights> out = new ArrayList<>();
    Random rnd = new Random(5);
    for (int k = 0; k < 3; k++) {
      LoraWeights w =
          LoraWeights.init(
              base.config(),
              new LoraConfig(
                  ranks[k],
                  2.0 * ranks[k],
                  dropouts[k],
                  Arrays.asList(Projection.values()),
                  k == 2),
              40 + k,
              DataType.FLOAT);
      for (LoraWeights.Module m : w.modules()) {
        float[] v = new float[(int) m.b().length()];
        for (int i = 0; i < v.length; i++) {
          v[i] = (float) (0.1 * rnd.nextGaussian());
        }
        m.b().assign(Nd4j.createFromArray(v).reshape(m.b().shape()));
      }
      out.add(w);
    }
    return out;
  }

  private static double step(Transformer model, Gemm gemm, List<LoraWeights> adapters) {
    List<int[]> ids = new ArrayList<>();
    Random rnd = new Random(9);
    int[] groups = new int[3 * ROWS];
    for (int r = 0; r < groups.length; r++) {
      ids.add(rnd.ints(T, 1, 500).toArray());
      groups[r] = r / ROWS;
    }
    Batch batch = Batch.padded(ids, null, 0, groups, 3, T);
    Workspace ws = model.newWorkspace(groups.length, T);
    FusedLora fused = new FusedLora(gemm);
    List<FusedLora.Slot> slots = new ArrayList<>();
    for (int k = 0; k < 3; k++) {
      slots.add(new FusedLora.Slot(adapters.get(k), ROWS * k * T, ROWS * (k + 1) * T, 70 + k));
    }
    fused.bind(slots, true, 3);
    model.forward(batch, fused, ws);
    LossStats stats = model.loss(batch, ws);
    model.backward(batch, fused, ws, stats);
    return stats.mean(0) + stats.mean(1) + stats.mean(2);
  }

  private static void assertClose(INDArray got, INDArray ref, String what) {
    double scale = ref.amaxNumber().doubleValue();
    assertThat(scale).as("%s is not zero", what).isPositive();
    assertThat(got.sub(ref).amaxNumber().doubleValue() / scale).as(what).isLessThan(1e-4);
  }
}
