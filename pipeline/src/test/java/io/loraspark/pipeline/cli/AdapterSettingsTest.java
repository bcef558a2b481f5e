package io.loraspark.pipeline.cli;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatCode;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.pipeline.ml.LoraEstimator;
import io.loraspark.pipeline.sweep.AdapterSettings;
import io.loraspark.pipeline.sweep.SettingRange;
import io.loraspark.pipeline.sweep.SweepConfig;
import io.loraspark.pipeline.sweep.SweepPlan;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Locale;
import org.apache.spark.ml.param.Param;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/**
 * Walks the table of adapter settings ({@link AdapterSettings}) and checks everything that shows or
 * applies a setting against it: {@code train}'s options and {@code --help}, the Spark ML
 * estimator's params and their defaults, the README's reference row, and each range as the sweep,
 * {@code train} and the Spark ML params apply it.
 */
class AdapterSettingsTest {
  @TempDir Path dir;

  /** A value at or beside a bound of a range, and whether it is valid, from the bounds alone. */
  private record Probe(Object value, boolean valid) {}

  private static List<Probe> probes(SettingRange r) {
    List<Probe> out = new ArrayList<>();
    if (r.integer()) {
      int min = (int) r.min();
      out.add(new Probe(min, true));
      out.add(new Probe(min - 1, false));
      if (r.max() < Integer.MAX_VALUE) {
        out.add(new Probe((int) r.max(), true));
        out.add(new Probe((int) r.max() + 1, false));
      }
    } else {
      out.add(new Probe(r.min(), !r.minOpen()));
      out.add(new Probe(r.min() - 1.0, false));
      out.add(new Probe(r.min() + 0.5, true));
      if (Double.isFinite(r.max())) {
        out.add(new Probe(r.max(), !r.maxOpen()));
        out.add(new Probe(r.max() + 1.0, false));
      }
    }
    return out;
  }

  private static String flag(AdapterSettings.Setting<?> s) {
    if (s.trainOption() != null) {
      return s.trainOption();
    }
    return s.name().startsWith("delta_") ? "--" + s.name().replace('_', '-') : null;
  }

  @Test
  void eachRangeIsAppliedAlikeByTheSweepTrainAndTheSparkMlParams() throws IOException {
    LoraEstimator est = new LoraEstimator();
    int checked = 0;
    for (AdapterSettings.Setting<?> s : AdapterSettings.ALL) {
      if (s.range() == null) {
        continue;
      }
      String valid = s.range().text();
      for (Probe probe : probes(s.range())) {
        String what = s.name() + " = " + probe.value();
        Path yaml = dir.resolve(s.name() + checked + ".yaml");
        Files.writeString(
            yaml, "model: m\ndata: d\ndefaults:\n  " + s.name() + ": " + probe.value() + "\n");
        var sweep =
            assertThatCode(() -> SweepPlan.expand(SweepConfig.read(yaml))).as("sweep " + what);
        if (probe.valid()) {
          sweep.doesNotThrowAnyException();
        } else {
          sweep.hasMessageContaining(s.name() + " must be " + valid + " but was");
        }
        if (flag(s) != null) {
          TrainCommand train = new TrainCommand();
          new CommandLine(train).parseArgs(flag(s), String.valueOf(probe.value()));
          var check = assertThatCode(train::checkRanges).as("train " + what);
          if (probe.valid()) {
            check.doesNotThrowAnyException();
          } else {
            check.hasMessage(flag(s) + " must be " + valid + " but was " + probe.value());
          }
        }
        if (s.mlParam() != null) {
          Param<Object> p = est.getParam(s.mlParam());
          if (probe.valid()) {
            assertThatCode(() -> est.set(p, probe.value()))
                .as("ml " + what)
                .doesNotThrowAnyException();
          } else {
            assertThatThrownBy(() -> est.set(p, probe.value()))
                .as("ml " + what)
                .hasMessage(
                    "Cannot set " + s.mlParam() + " to " + probe.value() + ": must be " + valid);
          }
        }
        checked++;
      }
    }
    assertThat(checked).as("probes").isGreaterThan(40);
    assertThat(AdapterSettings.RANK.range().text()).isEqualTo("an integer in [1, 4096]");
    assertThat(AdapterSettings.DROPOUT.range().text()).isEqualTo("a finite number in [0, 1)");
  }

  @Test
  void trainOptionsTakeTheTablesDefaultsAndHelpShowsThem() {
    CommandLine cli = new CommandLine(new TrainCommand());
    cli.parseArgs(); // no arguments: every option takes its default
    String help = cli.getUsageMessage(CommandLine.Help.Ansi.OFF);
    for (AdapterSettings.Setting<?> s : AdapterSettings.ALL) {
      if (s.trainOption() == null) {
        continue;
      }
      OptionSpec o = cli.getCommandSpec().findOption(s.trainOption());
      assertThat(o).as("train has %s for %s", s.trainOption(), s.name()).isNotNull();
      assertThat(o.<Object>getValue())
          .as("value of %s when not given", s.trainOption())
          .isEqualTo(s.fixedDefault().orElse(null));
      assertThat(help).as("train --help lists %s", s.trainOption()).contains(s.trainOption());
      if (s.defaultArgument() != null && o.typeInfo().getType() != boolean.class) {
        assertThat(help)
            .as("train --help shows the default of %s", s.trainOption())
            .contains("(default " + s.defaultArgument() + ")");
      }
    }
  }

  @Test
  void sparkMlParamsTakeTheTablesDefaults() {
    LoraEstimator est = new LoraEstimator();
    for (AdapterSettings.Setting<?> s : AdapterSettings.ALL) {
      if (s.mlParam() == null) {
        continue;
      }
      Param<Object> p = est.getParam(s.mlParam());
      scala.Option<Object> d = est.getDefault(p);
      if (s.fixedDefault().isPresent()) {
        assertThat(d.isDefined()).as("%s has a default", s.mlParam()).isTrue();
        assertThat(d.get()).as("default of param %s", s.mlParam()).isEqualTo(s.defaultValue());
      } else {
        assertThat(d.isDefined())
            .as("%s is derived (%s), unset", s.mlParam(), s.derived())
            .isFalse();
      }
    }
  }

  @Test
  void theReadmeReferenceHasOneRowPerSettingFromTheTable() throws IOException {
    Path here = Path.of("").toAbsolutePath();
    Path readme =
        Files.exists(here.resolve("conf"))
            ? here.resolve("README.md")
            : here.getParent().resolve("README.md");
    String text = Files.readString(readme, StandardCharsets.UTF_8);
    for (AdapterSettings.Setting<?> s : AdapterSettings.ALL) {
      String row =
          String.format(
              Locale.ROOT,
              "| `%s` | %s | %s | %s |",
              s.name(),
              s.type().label(),
              s.defaultText(),
              s.description());
      assertThat(text).as("README row of %s", s.name()).contains(row);
    }
  }

  @Test
  void idPrefixesAreDistinct() {
    List<String> prefixes =
        AdapterSettings.ALL.stream()
            .map(AdapterSettings.Setting::idPrefix)
            .filter(p -> !p.isEmpty())
            .toList();
    assertThat(prefixes).doesNotHaveDuplicates();
  }
}
