package io.loraspark.pipeline.ml;

import io.loraspark.pipeline.sweep.SettingRange;
import java.io.Serializable;
import java.util.Locale;
import scala.Function1;
import scala.runtime.AbstractFunction1;

/**
 * Param validators that fail with their own message. Spark's stock validators only return false,
 * which Spark reports as "parameter rank given invalid value 0." without the valid range; these
 * throw {@code "Cannot set rank to 0: must be an integer >= 1"} instead, on every path that sets a
 * param ({@code setRank}, a {@code ParamMap} from {@code ParamGridBuilder}, loading saved
 * metadata).
 */
final class ParamChecks {
  private ParamChecks() {}

  /** A serializable test on a param value. */
  interface Rule<T> extends java.util.function.Predicate<T>, Serializable {}

  /** Throws naming the param, the value and what is valid when the rule fails. */
  private static final class Check<T> extends AbstractFunction1<T, Object> implements Serializable {
    private static final long serialVersionUID = 1L;
    private final String name;
    private final Rule<T> rule;
    private final String valid;

    Check(String name, Rule<T> rule, String valid) {
      this.name = name;
      this.rule = rule;
      this.valid = valid;
    }

    @Override
    public Object apply(T value) {
      if (value == null || !rule.test(value)) {
        String shown =
            value instanceof String[] a ? java.util.Arrays.toString(a) : String.valueOf(value);
        throw new IllegalArgumentException(
            String.format(Locale.ROOT, "Cannot set %s to %s: must be %s", name, shown, valid));
      }
      return Boolean.TRUE;
    }
  }

  /** An int param in [min, max] ({@code IntParam} validators see boxed values). */
  static Function1<Object, Object> ints(String name, int min, int max) {
    String valid =
        max == Integer.MAX_VALUE
            ? "an integer >= " + min
            : "an integer in [" + min + ", " + max + "]";
    return new Check<>(name, v -> v instanceof Integer i && i >= min && i <= max, valid);
  }

  /** A numeric param within the range of its adapter setting ({@link SettingRange}). */
  static Function1<Object, Object> range(String name, SettingRange range) {
    return new Check<>(name, range::contains, range.text());
  }

  /** A finite double param accepted by {@code rule}, described by {@code valid}. */
  static Function1<Object, Object> doubles(String name, Rule<Double> rule, String valid) {
    return new Check<>(
        name,
        v -> v instanceof Double d && Double.isFinite(d) && rule.test(d),
        "a finite number " + valid);
  }

  /** A string param accepted by {@code rule}, described by {@code valid}. */
  static Function1<String, Object> strings(String name, Rule<String> rule, String valid) {
    return new Check<>(name, rule, valid);
  }

  /** A long param of at least {@code min} ({@code LongParam} validators see boxed values). */
  static Function1<Object, Object> longs(String name, long min) {
    return new Check<>(name, v -> v instanceof Long l && l >= min, "an integer >= " + min);
  }

  /** A string-array param whose every element {@code rule} accepts, described by {@code valid}. */
  static Function1<String[], Object> stringArrays(String name, Rule<String> rule, String valid) {
    return new Check<>(name, a -> java.util.Arrays.stream(a).allMatch(rule), valid);
  }

  /** A string param that names a column: not blank. */
  static Function1<String, Object> column(String name) {
    return strings(name, s -> !s.isBlank(), "a column name");
  }
}
