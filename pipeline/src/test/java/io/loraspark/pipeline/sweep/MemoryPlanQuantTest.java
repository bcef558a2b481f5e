package io.loraspark.pipeline.sweep;

import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.train.loop.AdapterSpec;
import io.loraspark.train.loop.TrainConfig;
import io.loraspark.train.lora.DeltaState;
import io.loraspark.train.lora.FrozenBranch;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.model.Adapters;
import io.loraspark.train.model.Batch;
import io.loraspark.train.model.CheckpointLoader;
import io.loraspark.train.model.ModelConfig;
import io.loraspark.train.model.ModelWeights;
import io.loraspark.train.model.Projection;
import io.loraspark.train.model.Transformer;
import io.loraspark.train.model.Workspace;
import io.loraspark.train.model.precision.Bf16Gemms;
import io.loraspark.train.model.precision.Precision;
import io.loraspark.train.model.quant.BaseQuant;
import io.loraspark.train.optim.LrSchedule;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;

/**
 * The executor plan for a quantized base and for Delta-LoRA's low-rank snapshot, against the bytes
 * the loaded stories260K base actually holds and the arrays a Delta-LoRA adapter allocates.
 */
class MemoryPlanQuantTest {
  static final Path STORIES = Path.of("../models/stories260K");

  static AdapterSpec spec(LoraMethod method) {
    return new AdapterSpec(
        method.key(),
        new LoraConfig(4, 8, 0, List.of(Projection.values()), false, method),
        new TrainConfig(10, 2, 1, 1e-3, 1, 0, 1, LrSchedule.Kind.COSINE, 1, 0, 1));
  }

  /**
   * The planned base is what {@link ModelWeights#totalBytes} measures on the loaded model plus one
   * task's dequantisation buffers (one FP32 array per distinct projection shape), within 1%.
   */
  @Test
  void quantizedBaseMatchesTheLoadedModel() {
    ModelConfig c = ModelConfig.load(STORIES);
    long scratch = 0;
    java.util.Set<List<Integer>> shapes = new java.util.HashSet<>();
    for (Projection p : Projection.values()) {
      if (shapes.add(List.of(p.outFeatures(c), p.inFeatures(c)))) {
        scratch += 4L * p.outFeatures(c) * p.inFeatures(c);
      }
    }
    for (BaseQuant q : BaseQuant.values()) {
      long measured = CheckpointLoader.load(STORIES, q).totalBytes();
      long planned =
          MemoryPlan.estimate(c, List.of(spec(LoraMethod.LORA)), 1, q, false, 64, 1).baseBytes();
      long want = q == BaseQuant.NONE ? measured : measured + scratch;
      assertThat((double) planned)
          .as(q.key())
          .isCloseTo(want, org.assertj.core.data.Percentage.withPercentage(1));
    }
  }

  /**
   * A bf16 training base (two packed bf16 copies of the projections, no fp32 one) against its plan
   * in bf16 and in auto (which may become bf16): the plan's FP32 bytes, up to 10% under what it
   * holds, since oneDNN pads a packed copy's columns to blocks of 64 (stories260K's F = 172 to 192;
   * widths that are multiples of 64, as in SmolLM2, pad nothing). DoRA on it holds its own W [out,
   * in], as on a quantized base.
   */
  @Test
  void bf16TrainingBaseMatchesTheLoadedModel() {
    ModelConfig c = ModelConfig.load(STORIES);
    ModelWeights packed = Precision.BF16.model(CheckpointLoader.load(STORIES)).weights();
    long measured = packed.totalBytes() + Bf16Gemms.of(packed).packedBytes();
    long dense = 0;
    for (Projection p : Projection.values()) {
      dense += (long) p.outFeatures(c) * p.inFeatures(c) * c.numLayers();
    }
    for (Precision precision : List.of(Precision.BF16, Precision.AUTO)) {
      MemoryPlan lora =
          MemoryPlan.estimate(
              c, List.of(spec(LoraMethod.LORA)), 1, BaseQuant.NONE, precision, false, 64, 1);
      assertThat(measured)
          .as(precision.key())
          .isBetween(lora.baseBytes(), lora.baseBytes() * 11 / 10);
      MemoryPlan dora =
          MemoryPlan.estimate(
              c, List.of(spec(LoraMethod.DORA)), 1, BaseQuant.NONE, precision, false, 64, 1);
      assertThat(dora.perAdapterStateBytes() - lora.perAdapterStateBytes())
          .as("DoRA's own W on a bf16 base")
          .isGreaterThanOrEqualTo(4 * dense);
    }
    ModelWeights int8 =
        Precision.BF16.model(CheckpointLoader.load(STORIES, BaseQuant.INT8)).weights();
    long int8Measured = int8.totalBytes() + Bf16Gemms.of(int8).packedBytes();
    assertThat(int8Measured).as("bf16 on int8: packed dequantised values").isEqualTo(measured);
    assertThat(plan(c, BaseQuant.INT8, Precision.BF16).baseBytes())
        .isEqualTo(plan(c, BaseQuant.NONE, Precision.BF16).baseBytes());
    assertThat(plan(c, BaseQuant.INT8, Precision.AUTO).baseBytes())
        .as("auto keeps a quantized base in fp32, its codes")
        .isEqualTo(plan(c, BaseQuant.INT8, Precision.FP32).baseBytes());
  }

  /**
   * In bf16 a task's activations add its thread's two bf16 copies of GEMM operands: the plan's term
   * per token, times the micro-batch's tokens, is exactly what a real bf16 step on a fresh thread
   * grows them to (stories260K at T = 64: dLogits and the attention scores, 512 values per token,
   * and the queries, 64).
   */
  @Test
  void bf16ActivationsCountTheThreadsCopiesAStepMakes() throws Exception {
    ModelConfig c = ModelConfig.load(STORIES);
    AdapterSpec lora = spec(LoraMethod.LORA);
    long planned =
        plan(c, BaseQuant.NONE, Precision.BF16).perAdapterActivationBytes()
            - plan(c, BaseQuant.NONE, Precision.FP32).perAdapterActivationBytes();
    int rows = lora.train().batchSize();
    assertThat(planned).isEqualTo(2L * rows * 64 * (512 + 64));
    Transformer model = Precision.BF16.model(CheckpointLoader.load(STORIES));
    long[] measured = new long[1];
    Thread fresh =
        new Thread(
            () -> {
              List<int[]> ids = new ArrayList<>();
              for (int r = 0; r < rows; r++) {
                ids.add(new Random(r).ints(64, 1, 500).toArray());
              }
              Batch batch = Batch.padded(ids, null, 0);
              Workspace ws = model.newWorkspace(rows, 64);
              model.forward(batch, Adapters.NONE, ws);
              model.backward(batch, Adapters.NONE, ws, model.loss(batch, ws));
              measured[0] = Bf16Gemms.threadCopyBytes();
            });
    fresh.start();
    fresh.join();
    assertThat(measured[0]).as("the copies a bf16 step grew").isEqualTo(planned);
  }

  private static MemoryPlan plan(ModelConfig c, BaseQuant q, Precision precision) {
    return MemoryPlan.estimate(c, List.of(spec(LoraMethod.LORA)), 1, q, precision, false, 64, 1);
  }

  /**
   * Delta-LoRA adds 4 bytes per value of its frozen snapshot, r·(out + in) per targeted module, to
   * LoRA's 16 per parameter: exactly the snapshot arrays a Delta-LoRA adapter allocates (no dense
   * [out, in]); DoRA on NF4 adds its own dequantised W [out, in].
   */
  @Test
  void deltaLoraStateCountsItsLowRankSnapshot() {
    ModelConfig c = ModelConfig.load(STORIES);
    long dense = 0;
    long lowRank = 0;
    for (Projection p : Projection.values()) {
      dense += (long) p.outFeatures(c) * p.inFeatures(c) * c.numLayers();
      lowRank += 4L * (p.outFeatures(c) + p.inFeatures(c)) * c.numLayers();
    }
    long lora =
        MemoryPlan.estimate(c, List.of(spec(LoraMethod.LORA)), 1, BaseQuant.NONE, false, 64, 1)
            .perAdapterStateBytes();
    long delta =
        MemoryPlan.estimate(
                c, List.of(spec(LoraMethod.DELTA_LORA)), 1, BaseQuant.NONE, false, 64, 1)
            .perAdapterStateBytes();
    assertThat(delta - lora).as("r (out + in) per module, in FP32").isEqualTo(4 * lowRank);
    long allocated = 0;
    LoraWeights w = LoraWeights.init(c, spec(LoraMethod.DELTA_LORA).lora(), 1, DataType.FLOAT);
    for (LoraWeights.Module m : w.modules()) {
      assertThat(m.state()).as("%s holds no dense ΔW", m.name()).isInstanceOf(DeltaState.class);
      FrozenBranch snapshot = m.state(DeltaState.class).snapshot();
      allocated += 4 * (snapshot.a().length() + snapshot.b().length());
    }
    assertThat(delta - lora).as("the snapshot arrays an adapter allocates").isEqualTo(allocated);
    long doraQuant =
        MemoryPlan.estimate(c, List.of(spec(LoraMethod.DORA)), 1, BaseQuant.NF4, false, 64, 1)
            .perAdapterStateBytes();
    assertThat(doraQuant - lora).as("DoRA's own dequantised W on NF4").isEqualTo(4 * dense);
  }

  /**
   * The planned activations of one adapter's micro-batch against the bytes a real workspace of that
   * shape allocates on stories260K (batch 2, T 64: spec's batch size and the plan's row length),
   * with and without recomputation: equal to the byte (the plan counts the workspace's buffers per
   * token), and recomputation must keep less than half.
   */
  @Test
  void activationPlanFollowsTheWorkspaceWithAndWithoutRecompute() {
    ModelConfig c = ModelConfig.load(STORIES);
    io.loraspark.train.model.Transformer model =
        new io.loraspark.train.model.Transformer(CheckpointLoader.load(STORIES, BaseQuant.NONE));
    for (boolean recompute : new boolean[] {false, true}) {
      long planned =
          MemoryPlan.estimate(
                  c, List.of(spec(LoraMethod.LORA)), 1, BaseQuant.NONE, recompute, 64, 1)
              .perAdapterActivationBytes();
      long actual = model.newWorkspace(2, 64, recompute).bytes();
      assertThat((double) planned / actual)
          .as("recompute %s: planned %d bytes, workspace %d", recompute, planned, actual)
          .isEqualTo(1.0);
    }
    long kept = model.newWorkspace(2, 64, false).bytes();
    long recomputed = model.newWorkspace(2, 64, true).bytes();
    assertThat(recomputed).as("one layer instead of %d", c.numLayers()).isLessThan(kept / 2);
  }
}
