package io.loraspark.prep.schema;

import static org.assertj.core.api.Assertions.assertThat;
import static org.assertj.core.api.Assertions.assertThatThrownBy;

import com.fasterxml.jackson.databind.JsonNode;
import io.loraspark.prep.read.StrictJson;
import java.util.List;
import org.junit.jupiter.api.Test;

/** Every record format maps onto the same conversation; bad fields reject with a reason. */
class RecordMappingTest {

  static JsonNode json(String s) {
    return StrictJson.parse(s);
  }

  static void rejects(RecordMapper mapper, String record, RejectReason reason, String mentioned) {
    assertThatThrownBy(() -> mapper.map(json(record)))
        .as("%s on %s", mapper.describe(), record)
        .isInstanceOfSatisfying(RowRejection.class, e -> assertThat(e.reason()).isEqualTo(reason))
        .hasMessageContaining(mentioned);
  }

  @Test
  void mapsEveryFormatOntoTheSameConversation() {
    Conversation expected = Conversation.single("Add 2 and 3.", "", "5");
    assertThat(
            FieldsMapper.ALPACA.map(
                json("{\"instruction\": \"Add 2 and 3.\", \"input\": \"\", \"output\": \"5\"}")))
        .isEqualTo(expected);
    assertThat(
            FieldsMapper.DOLLY.map(
                json(
                    "{\"instruction\": \"Add 2 and 3.\", \"context\": \"\", \"response\": \"5\", \"category\": \"x\"}")))
        .isEqualTo(expected);
    assertThat(
            TurnsMapper.SHAREGPT.map(
                json(
                    "{\"conversations\": [{\"from\": \"human\", \"value\": \"Add 2 and 3.\"}, {\"from\": \"gpt\", \"value\": \"5\"}]}")))
        .isEqualTo(expected);
    assertThat(
            TurnsMapper.MESSAGES.map(
                json(
                    "{\"messages\": [{\"role\": \"user\", \"content\": \"Add 2 and 3.\"}, {\"role\": \"assistant\", \"content\": \"5\"}]}")))
        .isEqualTo(expected);
    assertThat(
            SelfInstructMapper.INSTANCE.map(
                json(
                    "{\"instruction\": \"Add 2 and 3.\", \"instances\": [{\"input\": \"\", \"output\": \"5\"}]}")))
        .isEqualTo(expected);
    assertThat(
            ColumnMapping.parse("prompt=q, response=a")
                .mapper()
                .map(json("{\"q\": \"Add 2 and 3.\", \"a\": \"5\"}")))
        .isEqualTo(expected);
    assertThat(expected.exampleId()).as("same id from every format").matches("[0-9a-f]{64}");
  }

  @Test
  void keepsContextAndSystemPrompts() {
    Conversation c =
        ColumnMapping.parse("instruction=q,input=ctx,output=a,system=s")
            .mapper()
            .map(
                json(
                    "{\"q\": \"Summarize.\", \"ctx\": \"Long text.\", \"a\": \"Short.\", \"s\": \"Be brief.\"}"));
    assertThat(c.turns())
        .containsExactly(
            Turn.of(Role.SYSTEM, "Be brief."),
            new Turn(Role.USER, "Summarize.", "Long text."),
            Turn.of(Role.ASSISTANT, "Short."));
    assertThat(c.exampleId())
        .isNotEqualTo(Conversation.single("Summarize.", "", "Short.").exampleId());
  }

  @Test
  void rejectsMissingEmptyAndMistypedFields() {
    rejects(
        FieldsMapper.ALPACA, "{\"instruction\": \"x\"}", RejectReason.MISSING_FIELD, "\"output\"");
    rejects(
        FieldsMapper.ALPACA,
        "{\"instruction\": \"x\", \"output\": null}",
        RejectReason.MISSING_FIELD,
        "output");
    rejects(
        FieldsMapper.ALPACA,
        "{\"instruction\": \"\", \"output\": \"y\"}",
        RejectReason.EMPTY_FIELD,
        "instruction");
    rejects(
        FieldsMapper.ALPACA,
        "{\"instruction\": \"x\", \"output\": [\"y\"]}",
        RejectReason.WRONG_TYPE,
        "an array");
    rejects(
        FieldsMapper.ALPACA,
        "{\"instruction\": \"x\", \"output\": \"y\", \"input\": 3}",
        RejectReason.WRONG_TYPE,
        "input");
    rejects(
        FieldsMapper.DOLLY,
        "{\"instruction\": \"x\", \"output\": \"y\"}",
        RejectReason.MISSING_FIELD,
        "response");
    rejects(
        SelfInstructMapper.INSTANCE,
        "{\"instruction\": \"x\", \"instances\": [{\"output\": \"a\"}, {\"output\": \"b\"}]}",
        RejectReason.INVALID_CONVERSATION,
        "2 entries");
    rejects(
        SelfInstructMapper.INSTANCE,
        "{\"instruction\": \"x\", \"instances\": {}}",
        RejectReason.WRONG_TYPE,
        "an object");
  }

  @Test
  void rejectsConversationsThatCannotBeTrained() {
    rejects(
        TurnsMapper.MESSAGES,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"hi\"}]}",
        RejectReason.INVALID_CONVERSATION,
        "at least one user turn");
    rejects(
        TurnsMapper.MESSAGES,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"user\", \"content\": \"b\"}]}",
        RejectReason.INVALID_CONVERSATION,
        "turn 2 is user");
    rejects(
        TurnsMapper.MESSAGES,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \"b\"}, {\"role\": \"user\", \"content\": \"c\"}]}",
        RejectReason.INVALID_CONVERSATION,
        "last turn");
    rejects(
        TurnsMapper.MESSAGES,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"function\", \"content\": \"b\"}]}",
        RejectReason.INVALID_CONVERSATION,
        "\"function\"");
    rejects(
        TurnsMapper.MESSAGES,
        "{\"messages\": [{\"role\": \"user\", \"content\": \"a\"}, {\"role\": \"assistant\", \"content\": \" \"}]}",
        RejectReason.EMPTY_FIELD,
        "messages[1]");
    rejects(
        TurnsMapper.SHAREGPT,
        "{\"conversations\": \"hi\"}",
        RejectReason.WRONG_TYPE,
        "conversations");
    rejects(
        TurnsMapper.SHAREGPT,
        "{\"conversations\": [\"hi\"]}",
        RejectReason.WRONG_TYPE,
        "conversations[0]");
  }

  @Test
  void strictJsonRefusesLenientSyntax() {
    for (String bad :
        List.of(
            "{\"a\": 1,}",
            "{a: 1}",
            "{'a': 1}",
            "{\"a\": 1} // c",
            "/* c */ {\"a\": 1}",
            "{\"a\": NaN}",
            "{\"a\": 01}",
            "{\"a\": 1, \"a\": 2}",
            "{\"a\": 1} {\"b\": 2}",
            "{\"a\": \"tab\there\"}")) {
      assertThatThrownBy(() -> StrictJson.parse(bad))
          .as(bad)
          .isInstanceOfSatisfying(
              RowRejection.class,
              e -> assertThat(e.reason()).isEqualTo(RejectReason.MALFORMED_JSON));
    }
  }

  @Test
  void detectsTheRecordFormat() {
    assertThat(
            RecordFormat.detect(
                List.of(json("{\"instruction\": \"a\", \"input\": \"\", \"output\": \"b\"}")), "x"))
        .isEqualTo(RecordFormat.ALPACA);
    assertThat(
            RecordFormat.detect(
                List.of(json("{\"instruction\": \"a\", \"context\": \"\", \"response\": \"b\"}")),
                "x"))
        .isEqualTo(RecordFormat.DOLLY);
    assertThat(RecordFormat.detect(List.of(json("{\"conversations\": []}")), "x"))
        .isEqualTo(RecordFormat.SHAREGPT);
    assertThat(RecordFormat.detect(List.of(json("{\"messages\": []}")), "x"))
        .isEqualTo(RecordFormat.MESSAGES);
    assertThat(
            RecordFormat.detect(List.of(json("{\"instruction\": \"a\", \"instances\": []}")), "x"))
        .isEqualTo(RecordFormat.SELF_INSTRUCT);
    assertThatThrownBy(
            () ->
                RecordFormat.detect(
                    List.of(json("{\"question\": \"a\", \"answer\": \"b\"}")), "in.jsonl"))
        .isInstanceOf(IllegalArgumentException.class)
        .hasMessageContaining("in.jsonl")
        .hasMessageContaining("[question, answer]")
        .hasMessageContaining("--columns");
  }

  @Test
  void parsesNamesAndColumnMappingsWithClearErrors() {
    assertThat(RecordFormat.parse("Self-Instruct")).isEqualTo(RecordFormat.SELF_INSTRUCT);
    assertThatThrownBy(() -> RecordFormat.parse("oasst"))
        .hasMessageContaining("auto|alpaca|dolly|sharegpt|messages|self-instruct");
    assertThatThrownBy(() -> ColumnMapping.parse("prompt=q"))
        .hasMessageContaining("both prompt and response");
    assertThatThrownBy(() -> ColumnMapping.parse("prompt=q,answer=a"))
        .hasMessageContaining("\"answer\" is unknown");
    assertThatThrownBy(() -> ColumnMapping.parse("prompt=q,response"))
        .hasMessageContaining("key=column");
    assertThatThrownBy(() -> ColumnMapping.parse("prompt=q,instruction=r,response=a"))
        .hasMessageContaining("twice");
  }
}
