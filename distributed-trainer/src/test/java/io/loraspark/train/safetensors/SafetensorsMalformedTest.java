package io.loraspark.train.safetensors;

import static io.loraspark.train.safetensors.RawSafetensors.entry;
import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import org.assertj.core.api.AbstractThrowableAssert;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Every malformed input is an IllegalArgumentException naming the file and what is wrong. */
class SafetensorsMalformedTest {

  @TempDir Path dir;

  private AbstractThrowableAssert<?, ? extends Throwable> openFails(Path file) {
    return assertThatThrownBy(() -> SafetensorsFile.open(file).close())
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining(file.toString());
  }

  private Path header(String json, int dataBytes) throws IOException {
    return RawSafetensors.write(dir.resolve("bad.safetensors"), json, dataBytes);
  }

  @Test
  void fileShorterThanEightBytesIsRejected() throws IOException {
    Path file = Files.write(dir.resolve("short.safetensors"), new byte[5]);
    openFails(file).hasMessageContaining("file is 5 bytes").hasMessageContaining("8-byte length");
  }

  @Test
  void headerLengthLargerThanTheFileIsRejected() throws IOException {
    Path file =
        RawSafetensors.write(
            dir.resolve("t.safetensors"), 1000, "{}".getBytes(StandardCharsets.UTF_8), new byte[0]);
    openFails(file)
        .hasMessageContaining("header length 1000")
        .hasMessageContaining("2 bytes after the 8-byte prefix");
  }

  @Test
  void headerLengthOverTheSafetensorsLimitIsRejected() throws IOException {
    Path file =
        RawSafetensors.write(
            dir.resolve("big.safetensors"), 100_000_001, new byte[16], new byte[0]);
    openFails(file)
        .hasMessageContaining("header length 100000001")
        .hasMessageContaining("limit of 100000000");
  }

  @Test
  void headerLengthWithTheTopBitSetIsReportedUnsigned() throws IOException {
    Path file =
        RawSafetensors.write(dir.resolve("huge.safetensors"), -1L, new byte[16], new byte[0]);
    openFails(file).hasMessageContaining("18446744073709551615").hasMessageContaining("limit");
  }

  @Test
  void zeroHeaderLengthIsRejected() throws IOException {
    Path file = RawSafetensors.write(dir.resolve("z.safetensors"), 0, new byte[0], new byte[4]);
    openFails(file).hasMessageContaining("header length is 0");
  }

  @Test
  void headerThatIsNotUtf8IsRejected() throws IOException {
    byte[] h = {'{', '"', (byte) 0xff, (byte) 0xfe, '"', ':', '1', '}'};
    Path file = RawSafetensors.write(dir.resolve("u.safetensors"), h.length, h, new byte[0]);
    openFails(file).hasMessageContaining("header is not valid UTF-8");
  }

  @Test
  void headerThatIsNotJsonIsRejected() throws IOException {
    openFails(header("{\"a\": {\"dtype\": F32}}", 0))
        .hasMessageContaining("header is not valid JSON");
  }

  @Test
  void headerThatIsNotAnObjectIsRejected() throws IOException {
    openFails(header("[1, 2]  ", 0)).hasMessageContaining("header must be a JSON object");
  }

  @Test
  void trailingTokensAfterTheHeaderObjectAreRejected() throws IOException {
    openFails(header("{} {}", 0)).hasMessageContaining("header is not valid JSON");
  }

  @Test
  void duplicateKeysAreRejected() throws IOException {
    String json = "{" + entry("w", "F32", "[1]", 0, 4) + "," + entry("w", "F32", "[1]", 0, 4) + "}";
    openFails(header(json, 4))
        .hasMessageContaining("not valid JSON")
        .hasMessageContaining("Duplicate field 'w'");
  }

  @Test
  void trailingSpacePaddingIsAccepted() throws IOException {
    Path file = header("{" + entry("w", "F32", "[1]", 0, 4) + "}        ", 4);
    try (SafetensorsFile f = SafetensorsFile.open(file)) {
      assertThat(f.readFloats("w")).as("padded file reads").containsExactly(0f);
    }
  }

  @Test
  void entryMissingDtypeIsRejected() throws IOException {
    openFails(header("{\"w\":{\"shape\":[1],\"data_offsets\":[0,4]}}", 4))
        .hasMessageContaining("tensor 'w'")
        .hasMessageContaining("missing \"dtype\"");
  }

  @Test
  void entryMissingShapeIsRejected() throws IOException {
    openFails(header("{\"w\":{\"dtype\":\"F32\",\"data_offsets\":[0,4]}}", 4))
        .hasMessageContaining("tensor 'w'")
        .hasMessageContaining("missing \"shape\"");
  }

  @Test
  void entryMissingDataOffsetsIsRejected() throws IOException {
    openFails(header("{\"w\":{\"dtype\":\"F32\",\"shape\":[1]}}", 4))
        .hasMessageContaining("tensor 'w'")
        .hasMessageContaining("missing \"data_offsets\"");
  }

  @Test
  void entryThatIsNotAnObjectIsRejected() throws IOException {
    openFails(header("{\"w\":[1,2]}", 0))
        .hasMessageContaining("tensor 'w'")
        .hasMessageContaining("must be an object");
  }

  @Test
  void dtypeOfTheWrongJsonTypeIsRejected() throws IOException {
    openFails(header("{\"w\":{\"dtype\":32,\"shape\":[1],\"data_offsets\":[0,4]}}", 4))
        .hasMessageContaining("tensor 'w'")
        .hasMessageContaining("dtype must be a string");
  }

  @Test
  void shapeOfTheWrongJsonTypeIsRejected() throws IOException {
    openFails(header("{" + entry("w", "F32", "\"1x1\"", 0, 4) + "}", 4))
        .hasMessageContaining("tensor 'w'")
        .hasMessageContaining("shape must be an array of integers");
  }

  @Test
  void fractionalDimensionIsRejected() throws IOException {
    openFails(header("{" + entry("w", "F32", "[1.0]", 0, 4) + "}", 4))
        .hasMessageContaining("tensor 'w'")
        .hasMessageContaining("shape[0] must be an integer");
  }

  @Test
  void dataOffsetsOfTheWrongLengthAreRejected() throws IOException {
    openFails(header("{\"w\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}}", 4))
        .hasMessageContaining("tensor 'w'")
        .hasMessageContaining("data_offsets must be an array of 2 integers");
  }

  @Test
  void unknownDtypeIsRejectedListingTheSupportedOnes() throws IOException {
    for (String dtype : new String[] {"F64", "I32", "f32"}) {
      openFails(header("{" + entry("w", dtype, "[1]", 0, 4) + "}", 4))
          .hasMessageContaining("tensor 'w'")
          .hasMessageContaining("unsupported dtype '" + dtype + "'")
          .hasMessageContaining("only F32, F16 and BF16 are supported");
    }
  }

  @Test
  void negativeDimensionIsRejected() throws IOException {
    openFails(header("{" + entry("w", "F32", "[2,-1]", 0, 4) + "}", 4))
        .hasMessageContaining("tensor 'w'")
        .hasMessageContaining("shape[1] is -1")
        .hasMessageContaining(">= 0");
  }

  @Test
  void numelTimesBytesOverflowIsRejected() throws IOException {
    openFails(header("{" + entry("w", "F32", "[4294967296,4294967296]", 0, 4) + "}", 4))
        .hasMessageContaining("tensor 'w'")
        .hasMessageContaining("overflows");
    openFails(header("{" + entry("v", "F32", "[9223372036854775807]", 0, 4) + "}", 4))
        .hasMessageContaining("tensor 'v'")
        .hasMessageContaining("overflows");
  }

  @Test
  void byteSpanNotMatchingShapeAndDtypeIsRejected() throws IOException {
    openFails(header("{" + entry("w", "F16", "[3]", 0, 8) + "}", 8))
        .hasMessageContaining("tensor 'w'")
        .hasMessageContaining("span 8 bytes")
        .hasMessageContaining("= 6 bytes");
  }

  @Test
  void beginAfterEndIsRejected() throws IOException {
    openFails(header("{" + entry("w", "F32", "[1]", 8, 4) + "}", 8))
        .hasMessageContaining("tensor 'w'")
        .hasMessageContaining("begin > end");
  }

  @Test
  void offsetsPastTheDataSectionAreRejected() throws IOException {
    openFails(header("{" + entry("w", "F32", "[4]", 0, 16) + "}", 8))
        .hasMessageContaining("tensor 'w'")
        .hasMessageContaining("run past the end of the data section, which is 8 bytes");
  }

  @Test
  void overlappingTensorsAreRejected() throws IOException {
    String json =
        "{" + entry("a", "F32", "[2]", 0, 8) + "," + entry("b", "F32", "[2]", 4, 12) + "}";
    openFails(header(json, 12)).hasMessageContaining("'a' [0, 8] and 'b' [4, 12] overlap");
  }

  @Test
  void gapBetweenTensorsIsRejected() throws IOException {
    String json =
        "{" + entry("a", "F32", "[1]", 0, 4) + "," + entry("b", "F32", "[1]", 8, 12) + "}";
    openFails(header(json, 12))
        .hasMessageContaining("gap of 4 unused bytes before tensor 'b'")
        .hasMessageContaining("the end of 'a'");
  }

  @Test
  void firstTensorNotAtOffsetZeroIsRejected() throws IOException {
    openFails(header("{" + entry("a", "F32", "[1]", 4, 8) + "}", 8))
        .hasMessageContaining("gap of 4 unused bytes before tensor 'a'")
        .hasMessageContaining("start of the data section");
  }

  @Test
  void trailingBytesAfterTheLastTensorAreRejected() throws IOException {
    openFails(header("{" + entry("a", "F32", "[1]", 0, 4) + "}", 10))
        .hasMessageContaining("data section is 10 bytes but the tensors cover only 4");
  }

  @Test
  void metadataValueThatIsNotAStringIsRejected() throws IOException {
    openFails(header("{\"__metadata__\":{\"format\":\"pt\",\"step\":3}}", 0))
        .hasMessageContaining("__metadata__ value for key 'step' must be a string");
  }

  @Test
  void metadataThatIsNotAnObjectIsRejected() throws IOException {
    openFails(header("{\"__metadata__\":\"pt\"}", 0))
        .hasMessageContaining("__metadata__ must be an object");
  }

  @Test
  void aDirectoryIsNotASafetensorsFile() {
    openFails(dir).hasMessageContaining("not a regular file");
  }
}
