package io.loraspark.train.safetensors;

import static org.assertj.core.api.Assertions.assertThat;

import java.math.BigDecimal;
import java.util.SplittableRandom;
import org.junit.jupiter.api.Test;

/**
 * Checks the 16-bit conversions against references computed independently: the IEEE formula in
 * double arithmetic for widening, and exact (BigDecimal) nearest-value search for narrowing.
 */
class HalfFloatsTest {

  /** binary16 value from the IEEE formula, without bit tricks; NaN for NaN patterns. */
  private static double f16Reference(int h) {
    int sign = (h >>> 15) == 0 ? 1 : -1;
    int exp = (h >>> 10) & 0x1f;
    int mant = h & 0x3ff;
    if (exp == 31) {
      return mant == 0 ? sign * Double.POSITIVE_INFINITY : Double.NaN;
    }
    return exp == 0
        ? sign * Math.scalb((double) mant, -24)
        : sign * Math.scalb((double) (1024 + mant), exp - 25);
  }

  /** Nearest binary16 to a finite non-negative x, ties to even, 65520 and above to inf. */
  private static int f16NearestReference(float x) {
    BigDecimal target = new BigDecimal(x);
    int lo = 0; // binary search: the largest finite h with value(h) <= x
    int hiBound = 0x7bff;
    while (lo < hiBound) {
      int m = (lo + hiBound + 1) >>> 1;
      if (new BigDecimal(f16Reference(m)).compareTo(target) <= 0) {
        lo = m;
      } else {
        hiBound = m - 1;
      }
    }
    int hi = lo + 1; // 0x7c00 (inf) stands for 2^16 when rounding
    BigDecimal loV = new BigDecimal(f16Reference(lo));
    BigDecimal hiV = hi == 0x7c00 ? new BigDecimal(65536) : new BigDecimal(f16Reference(hi));
    int c = target.subtract(loV).compareTo(hiV.subtract(target));
    return c < 0 || (c == 0 && (lo & 1) == 0) ? lo : hi;
  }

  @Test
  void f16WideningMatchesTheIeeeFormulaForAll65536Patterns() {
    for (int h = 0; h < 0x10000; h++) {
      float got = HalfFloats.f16ToFloat((short) h);
      double want = f16Reference(h);
      if (Double.isNaN(want)) {
        assertThat(Float.isNaN(got)).as("0x%04x should widen to NaN, got %s", h, got).isTrue();
      } else {
        assertThat(Float.floatToRawIntBits(got))
            .as("0x%04x should widen to %s, got %s", h, want, got)
            .isEqualTo(Float.floatToRawIntBits((float) want));
      }
    }
  }

  @Test
  void f16NarrowingOfKnownValues() {
    assertF16(1.0f, 0x3c00);
    assertF16(-2.0f, 0xc000);
    assertF16(1f / 3f, 0x3555);
    assertF16(0.1f, 0x2e66);
    assertF16(65504f, 0x7bff);
    assertF16(65519.996f, 0x7bff);
    assertF16(65520f, 0x7c00); // tie between 65504 (odd) and 2^16: to even, i.e. overflow to inf
    assertF16(1e6f, 0x7c00);
    assertF16(0x1p-14f, 0x0400); // smallest normal
    assertF16(0x1p-24f, 0x0001); // smallest subnormal
    assertF16(0x1p-25f, 0x0000); // tie between 0 and 2^-24: to even (0)
    assertF16(Math.nextUp(0x1p-25f), 0x0001);
    assertF16(0x1.8p-24f, 0x0002); // tie between 1 and 2 subnormal units: to even (2)
    assertF16(0x1.8p-23f, 0x0003); // 3 units exactly
    assertF16(Float.MIN_VALUE, 0x0000);
    assertF16(-0.0f, 0x8000);
    assertF16(Float.POSITIVE_INFINITY, 0x7c00);
    assertF16(Float.NEGATIVE_INFINITY, 0xfc00);
  }

  @Test
  void f16NarrowingKeepsNaNAsNaN() {
    for (int bits : new int[] {0x7fc00000, 0x7f800001, 0xffc00000, 0x7fffffff}) {
      short h = HalfFloats.floatToF16(Float.intBitsToFloat(bits));
      assertThat(h & 0x7c00)
          .as("NaN 0x%08x must keep an all-ones exponent", bits)
          .isEqualTo(0x7c00);
      assertThat(h & 0x3ff).as("NaN 0x%08x must keep a non-zero mantissa", bits).isNotZero();
    }
  }

  @Test
  void f16NarrowingRoundsEveryMidpointToEvenAndItsNeighboursToNearest() {
    for (int h = 0; h < 0x7bff; h++) {
      float lo = (float) f16Reference(h);
      float hi = (float) f16Reference(h + 1);
      float mid = (lo + hi) / 2; // 12 significant bits: exact in float
      int even = (h & 1) == 0 ? h : h + 1;
      assertF16(mid, even);
      assertF16(-mid, even | 0x8000);
      assertF16(Math.nextDown(mid), h);
      assertF16(Math.nextUp(mid), h + 1);
      assertF16(lo, h);
    }
  }

  @Test
  void f16NarrowingOfRandomFloatsMatchesExactNearestSearch() {
    SplittableRandom rnd = new SplittableRandom(7);
    for (int i = 0; i < 3000; i++) {
      // exponents from far below the subnormal range to above the overflow threshold
      float x = Math.scalb(1f + rnd.nextFloat(), rnd.nextInt(-30, 18));
      assertF16(x, f16NearestReference(x));
    }
  }

  @Test
  void bf16WideningPutsTheBitsInTheUpperHalf() {
    assertThat(HalfFloats.bf16ToFloat((short) 0x3f80)).isEqualTo(1.0f);
    assertThat(HalfFloats.bf16ToFloat((short) 0x4049)).isEqualTo(3.140625f);
    assertThat(HalfFloats.bf16ToFloat((short) 0xff80)).isEqualTo(Float.NEGATIVE_INFINITY);
    assertThat(HalfFloats.bf16ToFloat((short) 0x0001)).isEqualTo(0x1p-133f);
    assertThat(HalfFloats.bf16ToFloat((short) 0x8000)).isEqualTo(-0.0f);
    assertThat(HalfFloats.bf16ToFloat((short) 0x7fc1)).isNaN();
  }

  @Test
  void bf16NarrowingRoundsToNearestEven() {
    assertBf16(0x3f808000, 0x3f80); // tie, 0x3f80 even
    assertBf16(0x3f818000, 0x3f82); // tie, 0x3f81 odd -> up
    assertBf16(0x3f808001, 0x3f81);
    assertBf16(0x3f807fff, 0x3f80);
    assertBf16(0xbf818000, 0xbf82);
    assertBf16(0x7f7f8000, 0x7f80); // tie above max finite: overflow to inf
    assertBf16(0x7f800000, 0x7f80);
    assertBf16(0x00008000, 0x0000); // subnormal tie, to even
    assertBf16(Float.floatToRawIntBits(1f / 3f), 0x3eab);
    short nan =
        HalfFloats.floatToBf16(Float.intBitsToFloat(0x7f800001)); // payload in low bits only
    assertThat(HalfFloats.bf16ToFloat(nan)).as("NaN with low payload must stay NaN").isNaN();
  }

  @Test
  void bf16NarrowingOfRandomFloatsMatchesExactNearestSearch() {
    SplittableRandom rnd = new SplittableRandom(11);
    for (int i = 0; i < 100_000; i++) {
      int bits = rnd.nextInt() & 0x7fffffff;
      if (bits >= 0x7f7f8000) {
        continue; // NaN/inf and the overflow band are covered above
      }
      int lo = bits & 0xffff0000;
      BigDecimal x = new BigDecimal(Float.intBitsToFloat(bits));
      BigDecimal loV = new BigDecimal(Float.intBitsToFloat(lo));
      BigDecimal hiV = new BigDecimal(Float.intBitsToFloat(lo + 0x10000));
      int c = x.subtract(loV).compareTo(hiV.subtract(x));
      int want = (c < 0 || (c == 0 && ((lo >>> 16) & 1) == 0)) ? lo >>> 16 : (lo >>> 16) + 1;
      assertBf16(bits, want);
    }
  }

  private static void assertF16(float x, int expected) {
    assertThat(HalfFloats.floatToF16(x) & 0xffff)
        .as("floatToF16(%s) should be 0x%04x", x, expected)
        .isEqualTo(expected);
  }

  private static void assertBf16(int floatBits, int expected) {
    assertThat(HalfFloats.floatToBf16(Float.intBitsToFloat(floatBits)) & 0xffff)
        .as("floatToBf16(0x%08x) should be 0x%04x", floatBits, expected)
        .isEqualTo(expected);
  }
}
