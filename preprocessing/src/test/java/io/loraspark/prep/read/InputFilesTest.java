package io.loraspark.prep.read;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import org.apache.hadoop.conf.Configuration;
import org.junit.jupiter.api.Test;
import org.junit.jupiter.api.io.TempDir;

/** Whole-input problems are IllegalArgumentExceptions with one clear line. */
class InputFilesTest {
  @TempDir Path tmp;
  static final Configuration CONF = new Configuration();

  @Test
  void detectsFormatsByExtensionThenContent() throws Exception {
    Files.writeString(tmp.resolve("a.jsonl"), "{\"a\": 1}\n");
    Files.writeString(tmp.resolve("b.json"), "[{\"a\": 1}]");
    Files.writeString(tmp.resolve("c.json"), "{\"a\": 1}\n{\"a\": 2}\n");
    Files.writeString(tmp.resolve("d.json"), "{\n  \"a\": 1\n}\n");
    Files.writeString(tmp.resolve("e.csv"), "x,y\n1,2\n");
    Files.writeString(tmp.resolve("f.txt"), "{\"a\": 1}\n");
    Files.write(tmp.resolve("g"), new byte[] {'P', 'A', 'R', '1', 0, 0});
    List<InputFile> files = InputFiles.resolve(CONF, tmp.toString(), FileFormat.AUTO);
    assertThat(files)
        .extracting(InputFile::name)
        .containsExactly("a.jsonl", "b.json", "c.json", "d.json", "e.csv", "f.txt", "g");
    assertThat(files)
        .extracting(InputFile::format)
        .containsExactly(
            FileFormat.JSONL,
            FileFormat.JSON,
            FileFormat.JSONL,
            FileFormat.JSON,
            FileFormat.CSV,
            FileFormat.JSONL,
            FileFormat.PARQUET);
    assertThat(files).extracting(InputFile::index).containsExactly(0, 1, 2, 3, 4, 5, 6);
  }

  @Test
  void refusesMissingEmptyAndUnknownInputs() throws Exception {
    assertThatThrownBy(
            () -> InputFiles.resolve(CONF, tmp.resolve("nope.jsonl").toString(), FileFormat.AUTO))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("nope.jsonl does not exist");
    Path empty = Files.createDirectories(tmp.resolve("empty"));
    Files.writeString(empty.resolve("_SUCCESS"), "");
    assertThatThrownBy(() -> InputFiles.resolve(CONF, empty.toString(), FileFormat.AUTO))
        .hasMessageContaining("holds no data files");
    Files.writeString(empty.resolve("x.jsonl"), "");
    assertThatThrownBy(() -> InputFiles.resolve(CONF, empty.toString(), FileFormat.AUTO))
        .hasMessageContaining("is empty");
    Path odd = tmp.resolve("data.bin");
    Files.writeString(odd, "hello\n");
    assertThatThrownBy(() -> InputFiles.resolve(CONF, odd.toString(), FileFormat.AUTO))
        .hasMessageContaining("cannot tell the format")
        .hasMessageContaining("--input-format");
    assertThat(InputFiles.resolve(CONF, odd.toString(), FileFormat.JSONL))
        .singleElement()
        .extracting(InputFile::format)
        .isEqualTo(FileFormat.JSONL);
    assertThatThrownBy(() -> FileFormat.parse("xml"))
        .hasMessageContaining("auto|jsonl|json|parquet|csv");
  }

  @Test
  void globsAndNestedDirectoriesUseRelativeNames() throws Exception {
    Files.createDirectories(tmp.resolve("d/sub"));
    Files.writeString(tmp.resolve("d/sub/x.jsonl"), "{}\n");
    Files.writeString(tmp.resolve("d/y.jsonl"), "{}\n");
    assertThat(InputFiles.resolve(CONF, tmp.resolve("d").toString(), FileFormat.AUTO))
        .extracting(InputFile::name)
        .containsExactly("sub/x.jsonl", "y.jsonl");
    assertThat(InputFiles.resolve(CONF, tmp.resolve("d/*.jsonl").toString(), FileFormat.AUTO))
        .extracting(InputFile::name)
        .containsExactly("y.jsonl");
  }
}
