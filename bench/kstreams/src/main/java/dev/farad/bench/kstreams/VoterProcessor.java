package dev.farad.bench.kstreams;

import java.nio.charset.StandardCharsets;

import org.apache.kafka.streams.processor.api.Processor;
import org.apache.kafka.streams.processor.api.ProcessorContext;
import org.apache.kafka.streams.processor.api.Record;
import org.apache.kafka.streams.state.KeyValueStore;

/**
 * Voter's procedure (examples/voter/index.ts), one instance per task (= input partition): a vote
 * for a contestant outside 1..6 is rejected; a phone with {@code maxVotesPerPhone} accepted votes
 * is rejected; otherwise the phone's count and the partition's contestant total go up and the vote
 * is accepted with the state of its area code. The result keeps the vote's key.
 */
final class VoterProcessor implements Processor<byte[], byte[], byte[], byte[]> {
  static final String VOTES_BY_PHONE = "votesByPhone";
  static final String VOTES_BY_CONTESTANT = "votesByContestant";
  private static final byte[] UNKNOWN_STATE = "XX".getBytes(StandardCharsets.UTF_8);

  private final VoterCodec codec;
  private final byte[][] states;
  private final int maxVotesPerPhone;
  private final VoterCodec.Vote vote = new VoterCodec.Vote();
  private ProcessorContext<byte[], byte[]> context;
  private KeyValueStore<Long, Integer> votesByPhone;
  private KeyValueStore<Integer, Long> votesByContestant;

  VoterProcessor(VoterCodec codec, byte[][] states, int maxVotesPerPhone) {
    this.codec = codec;
    this.states = states;
    this.maxVotesPerPhone = maxVotesPerPhone;
  }

  @Override
  public void init(ProcessorContext<byte[], byte[]> context) {
    this.context = context;
    this.votesByPhone = context.getStateStore(VOTES_BY_PHONE);
    this.votesByContestant = context.getStateStore(VOTES_BY_CONTESTANT);
  }

  @Override
  public void process(Record<byte[], byte[]> record) {
    codec.decodeVote(record.value(), vote);
    long phoneNumber = vote.phoneNumber;
    int contestantNumber = vote.contestantNumber;
    byte[] result;
    if (contestantNumber < 1 || contestantNumber > 6) {
      result = codec.encodeRejected(phoneNumber, contestantNumber, codec.invalidContestant);
    } else {
      Integer accepted = votesByPhone.get(phoneNumber);
      int count = accepted == null ? 0 : accepted;
      if (count >= maxVotesPerPhone) {
        result = codec.encodeRejected(phoneNumber, contestantNumber, codec.overVoteLimit);
      } else {
        votesByPhone.put(phoneNumber, count + 1);
        Long total = votesByContestant.get(contestantNumber);
        votesByContestant.put(contestantNumber, total == null ? 1L : total + 1);
        long areaCode = Math.floorDiv(phoneNumber, 10_000_000L);
        byte[] state = areaCode >= 0 && areaCode < states.length ? states[(int) areaCode] : null;
        result = codec.encodeAccepted(phoneNumber, contestantNumber, state == null ? UNKNOWN_STATE : state);
      }
    }
    context.forward(record.withValue(result));
  }
}
