package io.loraspark.train.model;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.train.lora.DoraState;
import io.loraspark.train.lora.LoraConfig;
import io.loraspark.train.lora.LoraMethod;
import io.loraspark.train.lora.LoraWeights;
import io.loraspark.train.model.precision.Bf16Gemms;
import io.loraspark.train.model.precision.Precision;
import io.loraspark.train.model.quant.BaseQuant;
import java.util.ArrayList;
import java.util.List;
import java.util.Random;
import org.junit.jupiter.api.BeforeAll;
import org.junit.jupiter.api.Test;
import org.nd4j.linalg.api.buffer.DataType;
import org.nd4j.linalg.api.ndarray.INDArray;
import org.nd4j.linalg.ops.transforms.Transforms;

/**
 * A training step of stories260K with the frozen projections, the LM head and attention's GEMMs in
 * bf16 against the same step in fp32: logits and the gradient that reaches the embeddings' output
 * agree to bf16's rounding, and the packed weights are made once per base and reused.
 */
class Bf16GemmsTest {
  static ModelWeights fp32;

  @BeforeAll
  static void load() {
    fp32 = CheckpointLoader.load(TestModels.STORIES);
  }

  /**
   * Tolerances, relative to the largest magnitude: logits 1e-2 (bf16 inputs round by 2⁻⁹ per GEMM,
   * five layers deep); the input gradient after backward through all layers 3e-2.
   */
  @Test
  void stepInBf16MatchesFp32WithinBf16Rounding() {
    Transformer a = new Transformer(fp32);
    Transformer b = Bf16Gemms.apply(a);
    assertThat(a.precision()).isEqualTo("fp32");
    assertThat(b.precision()).isEqualTo("bf16");
    Batch batch = batch(3, 48, 1);
    Workspace wa = a.newWorkspace(3, 48);
    Workspace wb = b.newWorkspace(3, 48);
    LossStats la = step(a, batch, wa);
    LossStats lb = step(b, batch, wb);
    double lossA = la.mean(0);
    double lossB = lb.mean(0);
    assertThat(Math.abs(lossB - lossA) / lossA)
        .as("loss fp32 %f bf16 %f", lossA, lossB)
        .isLessThan(1e-2);
    assertThat(relativeError(wb.dx, wa.dx))
        .as("d residual[0]")
        .isLessThan(3e-2)
        .isGreaterThan(1e-5);
  }

  @Test
  void weightsArePackedOncePerBaseAndReusedForOtherShapes() {
    ModelWeights own = CheckpointLoader.load(TestModels.STORIES);
    Bf16Gemms gemms = Bf16Gemms.of(own);
    assertThat(Bf16Gemms.of(own)).as("one per base per JVM").isSameAs(gemms);
    assertThat(gemms.packedBytes()).as("packed lazily").isZero();
    Transformer b = Bf16Gemms.apply(new Transformer(own));
    step(b, batch(2, 32, 2), b.newWorkspace(2, 32));
    long bytes = gemms.packedBytes();
    long fp32Bytes = own.linearBytes();
    // two bf16 copies (forward and input gradient) of 2 bytes each, less layer 0's q/k/v input
    // gradients (never formed), plus block padding
    assertThat(bytes).isGreaterThan(fp32Bytes * 3 / 4).isLessThanOrEqualTo(fp32Bytes * 2);
    step(b, batch(5, 24, 3), b.newWorkspace(5, 24));
    assertThat(gemms.packedBytes())
        .as("other row counts reuse the packed weights")
        .isEqualTo(bytes);
  }

  /**
   * A bf16 training base ({@link Precision#model}) keeps no fp32 projection array, holds about one
   * fp32 copy's bytes in its two packed copies, and steps as the bf16 GEMMs over the fp32 base do
   * (same bf16 weights; the packed layout may differ, so 1e-5 relative, far below bf16's 1e-2).
   */
  @Test
  void aBf16TrainingBaseHoldsNoFp32ProjectionsAndStepsAsBf16OverFp32Does() {
    ModelWeights source = CheckpointLoader.load(TestModels.STORIES);
    Transformer packed = Precision.BF16.model(source);
    ModelWeights w = packed.weights();
    assertThat(source.linear(3, Projection.DOWN).wasClosed())
        .as("the fp32 arrays are freed as they are packed")
        .isTrue();
    assertThat(packed.precision()).isEqualTo("bf16");
    for (LayerWeights layer : w.layers()) {
      for (Projection p : Projection.values()) {
        assertThat(ModelWeights.projection(layer, p)).as("no fp32 %s", p).isNull();
      }
    }
    assertThat(w.linearBytes()).isZero();
    long packedBytes = Bf16Gemms.of(w).packedBytes();
    long headBytes = 4L * fp32.config().vocabSize() * fp32.config().hiddenSize();
    assertThat(w.lmHead()).as("a tied head stays the fp32 embedding").isSameAs(w.embed());
    assertThat(packedBytes)
        .as("two bf16 copies of the projections and the head: their fp32 bytes, plus padding")
        .isBetween(fp32.linearBytes() + headBytes, (fp32.linearBytes() + headBytes) * 11 / 10);
    assertThatThrownBy(() -> w.linear(0, Projection.Q))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("packed bf16");
    assertStepsAlike(Bf16Gemms.apply(new Transformer(fp32)), packed, 3, 40, 4);
  }

  /**
   * An untied head is packed and its fp32 array freed, as the projections are; the step matches
   * bf16 GEMMs over the fp32 base within 1e-5 (same bf16 values, possibly other packed layouts).
   */
  @Test
  void aBf16TrainingBaseWithAnUntiedHeadHoldsItOnlyPacked() {
    ModelConfig c =
        new ModelConfig(
            "LlamaForCausalLM",
            64,
            128,
            2,
            4,
            2,
            16,
            512,
            256,
            1e-6,
            10000.0,
            false,
            false,
            false,
            false,
            1,
            2);
    ModelWeights source = io.loraspark.train.bench.SyntheticModel.create(c, 5);
    ModelWeights reference = io.loraspark.train.bench.SyntheticModel.create(c, 5);
    INDArray head = source.lmHead();
    Transformer packed = Precision.BF16.model(source);
    assertThat(head.wasClosed()).as("the fp32 head is freed once packed").isTrue();
    assertThatThrownBy(() -> packed.weights().lmHead())
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining("lm_head is held only as packed bf16");
    assertThat(packed.weights().totalBytes())
        .as("embedding, norms: no head")
        .isEqualTo(4L * (512 * 64 + 64 + 2 * 2 * 64));
    assertStepsAlike(Bf16Gemms.apply(new Transformer(reference)), packed, 2, 24, 6);
  }

  /** One step of each on one batch: loss and d residual[0] within 1e-5 (the same bf16 values). */
  private static void assertStepsAlike(
      Transformer expected, Transformer actual, int rows, int len, long seed) {
    Batch batch = batch(rows, len, seed);
    Workspace wa = expected.newWorkspace(rows, len);
    Workspace wb = actual.newWorkspace(rows, len);
    double lossA = step(expected, batch, wa).mean(0);
    double lossB = step(actual, batch, wb).mean(0);
    assertThat(Math.abs(lossB - lossA) / lossA).as("loss %f vs %f", lossA, lossB).isLessThan(1e-5);
    assertThat(relativeError(wb.dx, wa.dx)).as("d residual[0]").isLessThan(1e-5);
  }

  /** W read back from the packed copy is W rounded to bf16: within 2⁻⁸ of each value, not equal. */
  @Test
  void aBf16TrainingBaseGivesItsWeightsBackRoundedToBf16() {
    ModelWeights w = Precision.BF16.model(CheckpointLoader.load(TestModels.STORIES)).weights();
    for (Projection p : Projection.values()) {
      INDArray ref = fp32.linear(1, p);
      INDArray got = Bf16Gemms.of(w).weight(1, p);
      assertThat(got.shape()).isEqualTo(ref.shape());
      INDArray err = got.sub(ref);
      INDArray bound = Transforms.abs(ref).muli(1.0 / 256).addi(1e-30);
      assertThat(Transforms.abs(err).subi(bound).maxNumber().doubleValue())
          .as("%s within bf16 rounding", p)
          .isLessThanOrEqualTo(0.0);
      assertThat(err.amaxNumber().doubleValue()).as("%s rounded", p).isPositive();
    }
    LoraWeights dora =
        LoraWeights.init(
            w,
            new LoraConfig(4, 8, 0, List.of(Projection.UP), false, LoraMethod.DORA),
            3,
            DataType.FLOAT);
    assertThat(dora.module(2, Projection.UP).state(DoraState.class).base())
        .as("DoRA's own W on a bf16 base comes from the packed copy")
        .isEqualTo(Bf16Gemms.of(w).weight(2, Projection.UP));
  }

  /**
   * Auto leaves a quantized base in fp32; bf16 packs its dequantised values (no codes kept): the
   * same step as bf16 GEMMs over the dequantised fp32 base (1e-5 relative: same bf16 weights), and
   * within bf16's 1e-2 of the int8 base in fp32. A double base is refused.
   */
  @Test
  void bf16OnAQuantizedBasePacksItsDequantisedValuesAndAutoStaysFp32() {
    for (BaseQuant q : List.of(BaseQuant.INT8, BaseQuant.NF4)) {
      ModelWeights quantized = CheckpointLoader.load(TestModels.STORIES, q);
      Transformer fp32Quant = Precision.AUTO.model(quantized);
      assertThat(fp32Quant.precision()).isEqualTo("fp32");
      Transformer packed = Precision.BF16.model(quantized);
      assertThat(packed.weights().quantized()).as("codes replaced by the packed copies").isNull();
      assertThat(packed.weights().linearBytes()).isZero();
      List<LayerWeights> dequantised = new ArrayList<>();
      for (int l = 0; l < quantized.layers().size(); l++) {
        LayerWeights w = quantized.layers().get(l);
        INDArray[] p = new INDArray[Projection.values().length];
        for (Projection proj : Projection.values()) {
          p[proj.ordinal()] = quantized.quantized().dequantized(l, proj);
        }
        dequantised.add(
            new LayerWeights(
                w.inputNorm(),
                p[0],
                w.bq(),
                p[1],
                w.bk(),
                p[2],
                w.bv(),
                p[3],
                w.bo(),
                w.postNorm(),
                p[4],
                p[5],
                p[6],
                w.bGate(),
                w.bUp(),
                w.bDown()));
      }
      Transformer overDequantised =
          Bf16Gemms.apply(
              new Transformer(
                  new ModelWeights(
                      quantized.config(),
                      quantized.embed(),
                      dequantised,
                      quantized.finalNorm(),
                      quantized.lmHead())));
      Batch batch = batch(3, 40, 5);
      double lossPacked = step(packed, batch, packed.newWorkspace(3, 40)).mean(0);
      double lossRef = step(overDequantised, batch, overDequantised.newWorkspace(3, 40)).mean(0);
      double lossFp32 = step(fp32Quant, batch, fp32Quant.newWorkspace(3, 40)).mean(0);
      assertThat(Math.abs(lossPacked - lossRef) / lossRef).as(q.key()).isLessThan(1e-5);
      assertThat(Math.abs(lossPacked - lossFp32) / lossFp32).as(q.key()).isLessThan(1e-2);
    }
    ModelWeights f64 = CheckpointLoader.load(TestModels.STORIES, DataType.DOUBLE);
    assertThatThrownBy(() -> Precision.BF16.model(f64))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("float32");
  }

  private static LossStats step(Transformer model, Batch batch, Workspace ws) {
    model.forward(batch, Adapters.NONE, ws);
    LossStats stats = model.loss(batch, ws);
    model.backward(batch, Adapters.NONE, ws, stats);
    return stats;
  }

  private static Batch batch(int rows, int len, long seed) {
    Random rnd = new Random(seed);
    List<int[]> ids = new ArrayList<>();
    for (int r = 0; r < rows; r++) {
      int[] row = new int[len];
      for (int t = 0; t < len; t++) {
        row[t] = 1 + rnd.nextInt(500);
      }
      ids.add(row);
    }
    return Batch.padded(ids, null, 0);
  }

  private static double relativeError(INDArray got, INDArray ref) {
    return got.sub(ref).amaxNumber().doubleValue() / ref.amaxNumber().doubleValue();
  }
}
