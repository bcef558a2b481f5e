package io.loraspark.pipeline.cli;

import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.pipeline.ml.LoraEstimator;
import io.loraspark.pipeline.sweep.AdapterSettings;
import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Locale;
import org.apache.spark.ml.param.Param;
import org.junit.jupiter.api.Test;
import picocli.CommandLine;
import picocli.CommandLine.Model.OptionSpec;

/**
 * Walks the table of adapter settings ({@link AdapterSettings}) and checks everything that shows or
 * applies a setting against it: {@code train}'s options and {@code --help}, the Spark ML
 * estimator's params and their defaults, and the README's reference row.
 */
class AdapterSettingsTest {
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
              s.meaning());
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
