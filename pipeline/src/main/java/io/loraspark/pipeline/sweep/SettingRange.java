package io.loraspark.pipeline.sweep;

import java.io.Serializable;
import java.math.BigDecimal;

/**
 * The valid values of a numeric adapter setting, written once in {@link AdapterSettings} and
 * applied by the sweep ({@link SweepPlan}), {@code train}'s options and the Spark ML params'
 * checks.
 *
 * @param integer whether only whole numbers are valid
 * @param min the lower bound
 * @param minOpen whether {@code min} itself is invalid
 * @param max the upper bound, always included; infinite (or {@link Integer#MAX_VALUE} for an
 *     integer) when there is none
 * @param maxOpen whether {@code max} itself is invalid
 */
public record SettingRange(
    boolean integer, double min, boolean minOpen, double max, boolean maxOpen)
    implements Serializable {

  /** Whole numbers in [min, max]. */
  public static SettingRange ints(int min, int max) {
    return new SettingRange(true, min, false, max, false);
  }

  /** Whole numbers of at least {@code min}. */
  public static SettingRange intsFrom(int min) {
    return ints(min, Integer.MAX_VALUE);
  }

  /** Finite numbers above 0. */
  public static SettingRange positive() {
    return new SettingRange(false, 0, true, Double.POSITIVE_INFINITY, false);
  }

  /** Finite numbers of at least 0. */
  public static SettingRange nonNegative() {
    return new SettingRange(false, 0, false, Double.POSITIVE_INFINITY, false);
  }

  /** Finite numbers in [min, max). */
  public static SettingRange halfOpen(double min, double max) {
    return new SettingRange(false, min, false, max, true);
  }

  /** Whether {@code v} is valid: an Integer/Long for an integer range, finite, within bounds. */
  public boolean contains(Object v) {
    if (integer && !(v instanceof Integer || v instanceof Long)) {
      return false;
    }
    if (!(v instanceof Number n) || !Double.isFinite(n.doubleValue())) {
      return false;
    }
    double d = n.doubleValue();
    return (minOpen ? d > min : d >= min) && (maxOpen ? d < max : d <= max);
  }

  /** What is valid, as messages show it: "an integer in [1, 4096]", "a finite number > 0". */
  public String text() {
    boolean unbounded = integer ? max >= Integer.MAX_VALUE : Double.isInfinite(max);
    String bounds =
        unbounded
            ? (minOpen ? "> " : ">= ") + number(min)
            : "in "
                + (minOpen ? "(" : "[")
                + number(min)
                + ", "
                + number(max)
                + (maxOpen ? ")" : "]");
    return (integer ? "an integer " : "a finite number ") + bounds;
  }

  /**
   * Throws naming {@code what} (a YAML key or a flag), the valid values and {@code value} when it
   * is outside: "rank must be an integer in [1, 4096] but was 0".
   */
  public void require(String what, Object value) {
    if (!contains(value)) {
      throw new IllegalArgumentException(what + " must be " + text() + " but was " + value);
    }
  }

  private static String number(double v) {
    return new BigDecimal(Double.toString(v)).stripTrailingZeros().toPlainString();
  }
}
