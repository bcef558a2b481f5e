package io.loraspark.pipeline.sweep;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import io.loraspark.prep.job.PreprocessConfig;
import io.loraspark.prep.job.TooLongPolicy;
import io.loraspark.prep.schema.RecordFormat;
import io.loraspark.prep.template.TemplateKind;
import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** A sweep's {@code preprocess} section, typed when read and built into the preprocess job's. */
class PreprocessSettingsTest {
  @TempDir Path dir;

  private SweepConfig read(String preprocess) throws IOException {
    return SweepConfig.read(
        Files.writeString(dir.resolve("s.yaml"), "model: m\ndata: d\n" + preprocess));
  }

  @Test
  void everyKeyReachesThePreprocessConfigAsTheBuilderWouldSetIt() throws IOException {
    SweepConfig c =
        read(
            "preprocess: {input: [a.jsonl, b.jsonl], format: alpaca, template: chat,"
                + " on_too_long: reject, max_seq_len: 64, shards: 2, seed: 3,"
                + " eval_fraction: 0.25, pack: true}\n");
    PreprocessConfig expected =
        PreprocessConfig.builder("a.jsonl,b.jsonl", "m", "runs/x")
            .format(RecordFormat.ALPACA)
            .template(TemplateKind.CHAT)
            .onTooLong(TooLongPolicy.REJECT)
            .maxSeqLen(64)
            .shards(2)
            .seed(3)
            .evalFraction(0.25)
            .pack(true)
            .build();
    assertThat(c.preprocess().config("m", Path.of("runs/x"))).isEqualTo(expected);
  }

  @Test
  void keysLeftOutTakeThePreprocessDefaults() throws IOException {
    assertThat(read("").preprocess()).as("no section").isNull();
    assertThat(read("preprocess: {input: x.jsonl}\n").preprocess().config("m", Path.of("r")))
        .isEqualTo(PreprocessConfig.builder("x.jsonl", "m", "r").build());
  }

  @Test
  void aBadValueIsRefusedWhenReadNamingTheFileAndKey() throws IOException {
    Path f = dir.resolve("s.yaml");
    assertThatThrownBy(() -> read("preprocess: {input: x, format: csvish}\n"))
        .hasMessageStartingWith(f + ": preprocess.format: ")
        .hasMessageNotContaining("\n");
    assertThatThrownBy(() -> read("preprocess: {input: x, shards: 1.5}\n"))
        .hasMessage(f + ": preprocess.shards must be an integer but was 1.5");
    assertThatThrownBy(() -> read("preprocess: {input: x, pack: yes please}\n"))
        .hasMessage(f + ": preprocess.pack must be true or false but was yes please");
    assertThatThrownBy(() -> read("preprocess: {format: alpaca}\n"))
        .hasMessage(f + ": preprocess.input is required");
  }
}
