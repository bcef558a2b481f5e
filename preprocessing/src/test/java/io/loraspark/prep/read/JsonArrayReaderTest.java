package io.loraspark.prep.read;

import static org.assertj.core.api.Assertions.assertThat;

import io.loraspark.prep.schema.RejectReason;
import java.nio.charset.StandardCharsets;
import java.util.List;
import org.junit.jupiter.api.Test;

class JsonArrayReaderTest {
  static final InputFile FILE = new InputFile(0, "file:/x.json", "x.json", FileFormat.JSON, 0);

  static List<RawRecord> parse(String s) {
    return JsonArrayReader.parse(FILE, s.getBytes(StandardCharsets.UTF_8));
  }

  @Test
  void keepsEachElementsExactText() {
    List<RawRecord> r = parse("\uFEFF[\n  {\"a\": 1},\n  {\"b\": [1, 2]} , 3\n]\n");
    assertThat(r).extracting(RawRecord::raw).containsExactly("{\"a\": 1}", "{\"b\": [1, 2]}", "3");
    assertThat(r).extracting(RawRecord::rowNumber).containsExactly(1L, 2L, 3L);
    assertThat(r).extracting(RawRecord::error).containsOnlyNulls();
    assertThat(r.get(0).source()).isEqualTo("x.json:1");
  }

  @Test
  void aSyntaxErrorEndsTheFileAsOneRejectedRow() {
    List<RawRecord> r = parse("[{\"a\": 1}, {\"b\": 2,}, {\"c\": 3}]");
    assertThat(r).hasSize(2);
    assertThat(r.get(1).error()).isEqualTo(RejectReason.MALFORMED_JSON);
    assertThat(r.get(1).errorMessage()).contains("line 1").contains("rest of the file");
    assertThat(r.get(1).raw()).startsWith("{\"b\": 2,}");
  }

  @Test
  void invalidUtf8InsideAnElementRejectsThatElementOnly() {
    byte[] head = "[{\"a\": \"x".getBytes(StandardCharsets.UTF_8);
    byte[] tail = "\"}, {\"b\": 1}]".getBytes(StandardCharsets.UTF_8);
    byte[] all = new byte[head.length + 1 + tail.length];
    System.arraycopy(head, 0, all, 0, head.length);
    all[head.length] = (byte) 0xFF;
    System.arraycopy(tail, 0, all, head.length + 1, tail.length);
    List<RawRecord> r = JsonArrayReader.parse(FILE, all);
    assertThat(r).isNotEmpty();
    assertThat(r.get(0).error()).isEqualTo(RejectReason.INVALID_UTF8);
  }

  @Test
  void aSingleObjectIsOneRowAndEmptyIsNone() {
    assertThat(parse("  {\"a\": 1}\n"))
        .singleElement()
        .extracting(RawRecord::raw)
        .isEqualTo("{\"a\": 1}");
    assertThat(parse("  \n")).isEmpty();
    assertThat(parse("[]")).isEmpty();
  }

  @Test
  void bytesThatLookLikeUtf32AreARejectedRowNotATaskFailure() {
    // found by InstructionRowsFuzzTest#jsonArray: Jackson guessed UTF-32 and threw
    // CharConversionException, an IOException that failed the whole task
    byte[] bytes = new byte[40];
    bytes[0] = '[';
    bytes[36] = (byte) 0xDD;
    bytes[37] = (byte) 0x86;
    List<RawRecord> r = JsonArrayReader.parse(FILE, bytes);
    assertThat(r).hasSize(1);
    assertThat(r.get(0).error()).isEqualTo(RejectReason.INVALID_UTF8);
    assertThat(r.get(0).errorMessage()).contains("UTF-32");
  }

  @Test
  void utf16JsonIsOneRejectedRowAskingForUtf8() {
    byte[] bytes =
        "[{\"instruction\": \"hi\", \"output\": \"yo\"}]".getBytes(StandardCharsets.UTF_16LE);
    List<RawRecord> r = JsonArrayReader.parse(FILE, bytes);
    assertThat(r).hasSize(1);
    assertThat(r.get(0).error()).isEqualTo(RejectReason.INVALID_UTF8);
    assertThat(r.get(0).errorMessage())
        .isEqualTo("the file is not UTF-8 (it looks like UTF-16 or UTF-32); convert it to UTF-8");
  }
}
