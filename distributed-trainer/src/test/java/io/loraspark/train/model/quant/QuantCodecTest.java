package io.loraspark.train.model.quant;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;
import static org.assertj.core.api.Assertions.within;

import java.util.Random;
import org.junit.jupiter.api.Test;

/**
 * int8 and NF4 (with and without double-quantised scales) against hand-computed values: codes,
 * packing, scales and the dequantised matrices.
 */
class QuantCodecTest {

  @Test
  void int8RowScalesAndCodesByHand() {
    // row 0: absmax 1.27 -> scale 0.01, codes 50, -127, 1, 100; row 1: all zero -> scale 0
    float[] w = {0.5f, -1.27f, 0.01f, 1.0f, 0, 0, 0, 0, 2.54f, 0.0254f, -0.5f, 1.3f};
    Int8Matrix q = Int8Matrix.quantize(w, 3, 4);
    assertThat(q.scales()[0]).isCloseTo(0.01f, within(1e-8f));
    assertThat(q.codes()).startsWith(new byte[] {50, -127, 1, 100, 0, 0, 0, 0, 127, 1, -25, 65});
    assertThat(q.scales()[1]).isZero();
    assertThat(q.scales()[2]).isCloseTo(0.02f, within(1e-8f));
    float[] back = q.dequantize();
    float[] want = {0.5f, -1.27f, 0.01f, 1.0f, 0, 0, 0, 0, 2.54f, 0.02f, -0.5f, 1.3f};
    for (int i = 0; i < w.length; i++) {
      assertThat(back[i]).as("element %d", i).isCloseTo(want[i], within(1e-6f));
    }
    assertThat(q.storedBytes()).isEqualTo(12 + 3 * 4);
  }

  @Test
  void int8ErrorIsAtMostHalfAStep() {
    Random rnd = new Random(1);
    int rows = 17;
    int cols = 40;
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (rnd.nextGaussian() * (1 + i / cols));
    }
    Int8Matrix q = Int8Matrix.quantize(w, rows, cols);
    float[] back = q.dequantize();
    for (int i = 0; i < w.length; i++) {
      assertThat(Math.abs(back[i] - w[i])).isLessThanOrEqualTo(q.scales()[i / cols] * 0.5f + 1e-6f);
    }
  }

  @Test
  void nf4LevelsAreTheQloraTable() {
    assertThat(Nf4Matrix.LEVELS).hasSize(16);
    assertThat(Nf4Matrix.LEVELS[0]).isEqualTo(-1f);
    assertThat(Nf4Matrix.LEVELS[7]).isZero();
    assertThat(Nf4Matrix.LEVELS[15]).isEqualTo(1f);
    assertThat(Nf4Matrix.LEVELS[8]).isEqualTo(0.07958029955625534f);
    assertThat(Nf4Matrix.LEVELS[1]).isEqualTo(-0.6961928009986877f);
    for (int i = 1; i < 16; i++) {
      assertThat(Nf4Matrix.LEVELS[i]).isGreaterThan(Nf4Matrix.LEVELS[i - 1]);
    }
  }

  /**
   * A block of 64 with absmax 2: value 2·LEVELS[i % 16] quantizes to code i % 16 exactly; a second,
   * partial block of 6 holds values between levels (nearest wins) and its own absmax.
   */
  @Test
  void nf4BlocksCodesAndPackingByHand() {
    float[] w = new float[70];
    for (int i = 0; i < 64; i++) {
      w[i] = 2 * Nf4Matrix.LEVELS[i % 16];
    }
    // block 1, absmax 4: x/4 = 1, 0.5, -0.5, 0.03, -0.05, 0.125
    float[] tail = {4f, 2f, -2f, 0.12f, -0.2f, 0.5f};
    System.arraycopy(tail, 0, w, 64, 6);
    Nf4Matrix q = Nf4Matrix.quantize(w, 7, 10, false);
    assertThat(q.absmax()).containsExactly(2f, 4f);
    assertThat(q.packed()).hasSize(35);
    assertThat(q.packed()[0] & 0xFF).as("codes 0 and 1").isEqualTo(0x01);
    assertThat(q.packed()[7] & 0xFF).as("codes 14 and 15").isEqualTo(0xEF);
    // 0.5 -> 12 (0.4407 is nearer than 0.5626); -0.5 -> 2 (-0.5251); 0.03 -> 7 (0);
    // -0.05 -> 6 (-0.0911 at 0.041 vs 0 at 0.05); 0.125 -> 9 (0.1609 at 0.036 vs 0.0796 at 0.045)
    int[] want = {15, 12, 2, 7, 6, 9};
    for (int i = 0; i < 6; i++) {
      int idx = 64 + i;
      int code = (idx & 1) == 0 ? (q.packed()[idx >> 1] >> 4) & 0xF : q.packed()[idx >> 1] & 0xF;
      assertThat(code).as("code of element %d", idx).isEqualTo(want[i]);
    }
    float[] back = q.dequantize();
    for (int i = 0; i < 64; i++) {
      assertThat(back[i]).as("element %d", i).isEqualTo(w[i]);
    }
    for (int i = 0; i < 6; i++) {
      assertThat(back[64 + i]).isEqualTo(4 * Nf4Matrix.LEVELS[want[i]]);
    }
    assertThat(q.storedBytes()).isEqualTo(35 + 2 * 4);
  }

  /**
   * bitsandbytes' signed dynamic map: 256 sorted levels from −0.99296875 (the mean of the last two
   * points of linspace(0.1, 1, 65)) to 1, with 0 at index 127 and 10⁻⁶·0.55 the smallest positive.
   */
  @Test
  void dynamicMapByHand() {
    float[] code = DynamicMap.CODE;
    assertThat(code).hasSize(256);
    assertThat(code[0]).isEqualTo(-0.99296875f);
    assertThat(code[127]).isZero();
    assertThat(code[128]).isCloseTo(0.55e-6f, within(1e-12f));
    assertThat(code[254]).isEqualTo(0.99296875f);
    assertThat(code[255]).isEqualTo(1f);
  }

  /**
   * Double-quantised scales: every block absmax within half a dynamic-map step near 1 (0.9/64/2 of
   * its group's absmax₂) of the true one, and the matrix within that plus NF4's own error; the
   * storage is 1 byte per block plus 4 per 256 blocks plus the offset.
   */
  @Test
  void nf4DoubleQuantizedScales() {
    Random rnd = new Random(2);
    int rows = 64;
    int cols = 520; // 33280 values: 520 blocks, 3 scale groups (the last partial)
    float[] w = new float[rows * cols];
    for (int i = 0; i < w.length; i++) {
      w[i] = (float) (rnd.nextGaussian() * 0.02 * (1 + (i / 64) % 7));
    }
    Nf4Matrix plain = Nf4Matrix.quantize(w, rows, cols, false);
    Nf4Matrix dq = Nf4Matrix.quantize(w, rows, cols, true);
    assertThat(dq.absmax()).isNull();
    assertThat(dq.absmaxCodes()).hasSize(520);
    assertThat(dq.absmax2()).hasSize(3);
    assertThat(dq.packed()).isEqualTo(plain.packed());
    for (int b = 0; b < 520; b++) {
      float tol = dq.absmax2()[b / Nf4Matrix.SCALE_BLOCK] * 0.9f / 64 / 2 * 1.0001f;
      assertThat(dq.blockAbsmax(b)).as("block %d", b).isCloseTo(plain.absmax()[b], within(tol));
    }
    assertThat(dq.storedBytes()).isEqualTo(33280 / 2 + 520 + 3 * 4 + 4);
    assertThat(plain.storedBytes()).isEqualTo(33280 / 2 + 520 * 4);
  }

  @Test
  void parseNamesTheValidModes() {
    assertThat(BaseQuant.parse(" NF4 ")).isEqualTo(BaseQuant.NF4);
    assertThatThrownBy(() -> BaseQuant.parse("fp8"))
        .hasMessage("unknown base_quant 'fp8'; valid: none, int8, nf4");
  }
}
