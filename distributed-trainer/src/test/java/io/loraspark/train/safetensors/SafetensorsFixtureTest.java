package io.loraspark.train.safetensors;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.ByteBuffer;
import java.nio.ByteOrder;
import java.nio.file.Files;
import java.nio.file.Path;
import org.junit.jupiter.api.Test;

/** Reads the bundled stories260K checkpoint (module-relative path, as Maven runs tests). */
class SafetensorsFixtureTest {

  static final Path FIXTURE = Path.of("../models/stories260K/model.safetensors");

  /** Header length of the fixture, from its first 8 bytes (checked below). */
  private static final int HEADER_BYTES = 5032;

  @Test
  void fixtureHasTheExpectedTensorsShapesAndMetadata() {
    try (SafetensorsFile f = SafetensorsFile.open(FIXTURE)) {
      assertThat(f.names())
          .as("tensor names of %s", FIXTURE)
          .hasSize(48)
          .startsWith("model.embed_tokens.weight")
          .contains("lm_head.weight", "model.layers.0.self_attn.q_proj.weight");
      assertThat(f.metadata()).as("metadata").containsEntry("format", "pt");
      assertShape(f, "model.embed_tokens.weight", 512, 64);
      assertShape(f, "lm_head.weight", 512, 64);
      assertShape(f, "model.layers.0.self_attn.q_proj.weight", 64, 64);
      assertShape(f, "model.layers.0.self_attn.k_proj.weight", 32, 64);
      assertThat(f.info("model.embed_tokens.weight").dtype()).isEqualTo(DType.F32);
      assertThat(f.contains("model.layers.0.self_attn.q_proj.weight")).isTrue();
      assertThat(f.contains("model.nope")).isFalse();
    }
  }

  @Test
  void fixtureValuesMatchTheRawLittleEndianBytes() throws IOException {
    ByteBuffer raw = ByteBuffer.wrap(Files.readAllBytes(FIXTURE)).order(ByteOrder.LITTLE_ENDIAN);
    assertThat(raw.getLong(0)).as("fixture header length").isEqualTo(HEADER_BYTES);
    try (SafetensorsFile f = SafetensorsFile.open(FIXTURE)) {
      // data_offsets taken from the fixture's header: embed [0, 131072), q_proj [131328, 147712)
      assertMatchesRaw(f.readFloats("model.embed_tokens.weight"), raw, 0, 512 * 64);
      assertMatchesRaw(
          f.readFloats("model.layers.0.self_attn.q_proj.weight"), raw, 131328, 64 * 64);
      for (String name : f.names()) {
        float[] v = f.readFloats(name);
        assertThat((long) v.length).as("element count of %s", name).isEqualTo(f.info(name).numel());
      }
    }
  }

  @Test
  void fixtureOpensAsACheckpointFromItsDirectoryAndItsPath() {
    try (SafetensorsCheckpoint dir = SafetensorsCheckpoint.open(FIXTURE.getParent());
        SafetensorsFile f = SafetensorsFile.open(FIXTURE)) {
      assertThat(dir.names()).as("checkpoint names").isEqualTo(f.names());
      assertThat(dir.metadata()).containsEntry("format", "pt");
      assertThat(dir.readFloats("lm_head.weight")).isEqualTo(f.readFloats("lm_head.weight"));
    }
    try (SafetensorsCheckpoint file = SafetensorsCheckpoint.open(FIXTURE)) {
      assertThat(file.info("model.layers.0.self_attn.k_proj.weight").shape())
          .containsExactly(32, 64);
    }
  }

  @Test
  void askingForAnAbsentTensorNamesTheFileAndTheTensor() {
    try (SafetensorsFile f = SafetensorsFile.open(FIXTURE)) {
      assertThatThrownBy(() -> f.info("model.missing"))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining(FIXTURE + ": no tensor 'model.missing'");
      assertThatThrownBy(() -> f.readFloats("model.missing"))
          .isInstanceOf(IllegalArgumentException.class)
          .hasMessageContaining("no tensor 'model.missing'");
    }
  }

  @Test
  void readingAfterCloseFailsClearly() {
    SafetensorsFile f = SafetensorsFile.open(FIXTURE);
    f.close();
    assertThatThrownBy(() -> f.readFloats("lm_head.weight"))
        .isInstanceOf(IllegalStateException.class)
        .hasMessageContaining(FIXTURE.toString())
        .hasMessageContaining("closed");
  }

  private static void assertShape(SafetensorsFile f, String name, long... dims) {
    assertThat(f.info(name).shape()).as("shape of %s", name).containsExactly(dims);
  }

  private static void assertMatchesRaw(float[] got, ByteBuffer raw, int begin, int numel) {
    assertThat(got).as("element count").hasSize(numel);
    int base = 8 + HEADER_BYTES + begin;
    for (int i = 0; i < numel; i++) {
      assertThat(Float.floatToRawIntBits(got[i]))
          .as("element %d vs raw bytes at %d", i, base + 4 * i)
          .isEqualTo(raw.getInt(base + 4 * i));
    }
  }
}
