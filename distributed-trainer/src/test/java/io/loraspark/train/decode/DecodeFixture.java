package io.loraspark.train.decode;

import io.loraspark.train.lora.AdaLoraState;
import io.loraspark.train.lora.DeltaState;
import io.loraspark.train.lora.DoraState;
import io.loraspark.train.lora.FusedLora;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.lora.VeraState;
import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.Batch;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.TestModels;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.Workspace;
import java.nio.file.Path;
import java.util.Arrays;
import java.util.List;
import java.util.Random;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.factory.Nd4j;

/** Random checkpoints, moved-off-init adapters and the full-forward reference for decode tests. */
final class DecodeFixture {
  static final List<Projection> ALL = List.of(Projection.values());

  private DecodeFixture() {}

  /** A random Llama-family checkpoint (C=16, 2 layers, GQA 4/2) loaded in float32. */
  static ModelWeights model(Path dir, String arch, boolean tied, boolean bias, long seed) {
    return CheckpointLoader.load(
        TestModels.writeRandom(dir, TestModels.config(arch, tied, bias), seed));
  }

  /**
   * An adapter of {@code method} on every projection, every trained tensor (and Delta-LoRA's
   * snapshot, switched on) moved off its init by N(0, 0.1) noise so each term of the branch is
   * nonzero.
   */
  static LoraWeights adapter(ModelWeights base, LoraMethod method, int rank, long seed) {
    return adapter(base, method, rank, seed, ALL);
  }

  /** {@link #adapter(ModelWeights, LoraMethod, int, long)} on the projections {@code targets}. */
  static LoraWeights adapter(
      ModelWeights base, LoraMethod method, int rank, long seed, List<Projection> targets) {
    LoraConfig config = new LoraConfig(rank, 2.0 * rank, 0.0, targets, false, method);
    LoraWeights w = LoraWeights.init(base, config, seed, DataType.FLOAT);
    Random rnd = new Random(seed);
    for (LoraWeights.Module m : w.modules()) {
      if (method != LoraMethod.VERA) {
        jitter(m.a(), rnd, 0.1);
        jitter(m.b(), rnd, 0.1);
      }
      if (m.state() instanceof DoraState d) {
        jitter(d.magnitude(), rnd, 0.1);
      }
      if (m.state() instanceof VeraState v) {
        jitter(v.lambdaD(), rnd, 0.1);
        jitter(v.lambdaB(), rnd, 0.1);
      }
      if (m.state() instanceof AdaLoraState e) {
        jitter(e.e(), rnd, 0.1);
      }
      if (m.state() instanceof DeltaState d) { // the snapshot, on: (1 + λ) s B A − λ s B_K A_K
        jitter(d.snapshot().a(), rnd, 0.1);
        jitter(d.snapshot().b(), rnd, 0.1);
        d.snapshot().switchOn(-2);
      }
    }
    return w;
  }

  private static void jitter(INDArray a, Random rnd, double std) {
    float[] noise = new float[(int) a.length()];
    for (int i = 0; i < noise.length; i++) {
      noise[i] = (float) (std * rnd.nextGaussian());
    }
    a.addi(Nd4j.create(noise, a.shape(), 'c'));
  }

  /** The full (uncached) forward's logits of {@code ids}, [T, V], by the training engine. */
  static float[][] fullLogits(ModelWeights base, Adapters adapters, int[] ids) {
    Transformer t = new Transformer(base);
    Workspace ws = t.newWorkspace(1, ids.length);
    Batch batch = Batch.padded(List.of(ids), null, 0, new int[1], 1, ids.length);
    t.forward(batch, adapters, ws);
    float[][] out = new float[ids.length][];
    for (int i = 0; i < ids.length; i++) {
      out[i] = ws.logits().getRow(i).toFloatVector();
    }
    return out;
  }

  static Adapters inference(LoraWeights w) {
    return w == null ? Adapters.NONE : FusedLora.inference(w);
  }

  /** max |a − b| / max |b|. */
  static double relativeError(float[] a, float[] b) {
    double diff = 0;
    double scale = 0;
    for (int i = 0; i < b.length; i++) {
      diff = Math.max(diff, Math.abs(a[i] - b[i]));
      scale = Math.max(scale, Math.abs(b[i]));
    }
    return diff / scale;
  }

  static int[] randomIds(int n, int vocab, long seed) {
    Random rnd = new Random(seed);
    int[] ids = new int[n];
    for (int i = 0; i < n; i++) {
      ids[i] = 1 + rnd.nextInt(vocab - 1);
    }
    return ids;
  }

  static float[] row(float[] logits, int slot, int vocab) {
    return Arrays.copyOfRange(logits, slot * vocab, (slot + 1) * vocab);
  }
}
