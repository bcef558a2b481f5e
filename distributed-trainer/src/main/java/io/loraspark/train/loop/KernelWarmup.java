package io.loraspark.train.loop;

import io.loraspark.train.bench.SyntheticModel;
import io.loraspark.train.lora.FusedLora;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.model.Batch;
import io.loraspark.train.model.Kernels;
import io.loraspark.train.model.LossStats;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.Workspace;
import io.loraspark.train.optim.AdamW;
import io.loraspark.train.optim.AdamWConfig;
import io.loraspark.train.optim.GradClip;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.SplittableRandom;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * Trains two LoRA adapters for a few dozen steps on a tiny random model, once per JVM, before the
 * first real step, so that C2 has compiled the fused Vector API kernels by the time they meet
 * full-size arrays.
 *
 * <p>Why: until C2 compiles a Vector API method, every vector operation runs as Java code that
 * allocates an object and an array per vector. The first steps of a real model then ran millions of
 * such operations (about 1.5 GB of garbage in the first step of the eight-adapter benchmark), and
 * G1 answered by growing the heap, which stays resident: 140 MB more peak memory, and slower first
 * steps. On the tiny model the same code gets hot in a fraction of the garbage. With the ND4J
 * kernels ({@link Kernels#VECTOR} false) there is nothing to compile and nothing runs.
 *
 * <p>The tiny model is a {@link SyntheticModel} and its tokens come from a fixed {@link
 * SplittableRandom}; neither touches ND4J's global generator, so the warm-up changes no random
 * stream a run depends on.
 */
public final class KernelWarmup {
  /** Steps of the tiny model: enough for C2 to compile the kernels (measured with the bench). */
  static final int STEPS = 40;

  private static final long SEED = 20_241_122L;

  /**
   * The tiny model's head dim: its rotary halves (32 floats) fill two 512-bit vectors, so RoPE's
   * vector loop runs and loops in the warm-up as in real models (64 or 128). At 16 the loop never
   * ran, C2 compiled it as a trap, and the first real step deoptimised RoPE back to boxing code.
   */
  static final int HEAD_DIM = 64;

  private static boolean done;

  private KernelWarmup() {}

  /** Runs the warm-up the first time it is called in this JVM; later calls return at once. */
  public static synchronized void once() {
    if (!done && Kernels.VECTOR) {
      run(STEPS);
    }
    done = true;
  }

  /** Trains the tiny model for {@code steps} steps and returns the milliseconds it took. */
  static double run(int steps) {
    long t0 = System.nanoTime();
    ModelConfig c =
        new ModelConfig(
            "LlamaForCausalLM",
            128,
            192,
            2,
            2,
            1,
            HEAD_DIM,
            256,
            64,
            1e-6,
            10000.0,
            false,
            false,
            false,
            false,
            1,
            2);
    int rowsPerAdapter = 2;
    int seq = 48;
    SplittableRandom rnd = new SplittableRandom(SEED);
    Transformer model = new Transformer(SyntheticModel.create(c, SEED));
    Workspace ws = model.newWorkspace(2 * rowsPerAdapter, seq);
    LoraConfig lora = new LoraConfig(4, 8.0, 0.0, Arrays.asList(Projection.values()), false);
    List<FusedLora.Slot> slots = new ArrayList<>();
    List<AdamW> optimizers = new ArrayList<>();
    for (int k = 0; k < 2; k++) {
      LoraWeights w = LoraWeights.init(c, lora, k, DataType.FLOAT);
      optimizers.add(AdamW.forLora(AdamWConfig.of(1e-3), w));
      slots.add(new FusedLora.Slot(w, k * rowsPerAdapter * seq, (k + 1) * rowsPerAdapter * seq, k));
    }
    List<int[]> ids = new ArrayList<>();
    int[] groups = new int[2 * rowsPerAdapter];
    for (int r = 0; r < groups.length; r++) {
      ids.add(rnd.ints(seq, 0, c.vocabSize()).toArray());
      groups[r] = r / rowsPerAdapter;
    }
    Batch batch = Batch.padded(ids, null, 0, groups, 2, seq);
    FusedLora fused = new FusedLora();
    for (int step = 0; step < steps; step++) {
      fused.bind(slots, true, step);
      model.forward(batch, fused, ws);
      LossStats stats = model.loss(batch, ws);
      model.backward(batch, fused, ws, stats);
      for (int k = 0; k < slots.size(); k++) {
        GradClip.clipByGlobalNorm(optimizers.get(k).grads(), 1.0);
        optimizers.get(k).step();
        slots.get(k).weights().zeroGrad();
      }
    }
    return (System.nanoTime() - t0) / 1e6;
  }
}
