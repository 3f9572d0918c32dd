# Baseline: the W47 totals of `obsctl digest` computed with jq, streaming (no slurp).
#
#   jq -n -c -f scripts/jq-totals.jq \
#      --arg start 2026-11-16T00:00:00Z --arg end 2026-11-23T00:00:00Z < corpus.jsonl
#
# Shape-A events only (`type`, `timestamp` ISO 8601 UTC with a `Z`). The window is
# half-open [start, end); the previous window has the same length and ends at start.
# Timestamps are compared as strings cut to whole seconds (YYYY-MM-DDTHH:MM:SS), which is
# exact for UTC timestamps and window bounds on whole seconds. Sessions = session_start
# events in the window (the same as distinct sessionIds when, as in gencorpus corpora, no
# session crosses a window bound; a set of session ids in the reduce state makes jq 1.6
# copy it on every update, which is quadratic: ~7 min instead of ~13 s for 100 MB).
# Values that are not objects with a string timestamp are ignored; jq stops at the first
# malformed line (gencorpus corpora have none).

def secs: .[0:19] + "Z" | fromdateiso8601;

$ARGS.named.start as $ws
| $ARGS.named.end as $we            # `$end` is not a valid variable name in jq 1.6
| ($ws | .[0:19]) as $s
| ($we | .[0:19]) as $e
| ((($ws | secs) - (($we | secs) - ($ws | secs))) | todateiso8601 | .[0:19]) as $p
| reduce (inputs | select(type == "object" and (.timestamp | type) == "string")) as $ev (
    {cost: 0, input_tokens: 0, output_tokens: 0, model_calls: 0, runs: 0, errors: 0,
     tool_calls: 0, tool_failures: 0, uncosted_events: 0, sessions: 0,
     prev_cost: 0, prev_sessions: 0};
    ($ev.timestamp | .[0:19]) as $t
    | if $t >= $s and $t < $e then
        if $ev.type == "session_start" then .sessions += 1
        elif $ev.type == "model_usage" then
            .model_calls += 1
            | .input_tokens += ($ev.inputTokens // 0)
            | .output_tokens += ($ev.outputTokens // 0)
            | if ($ev.costUsd | type) == "number" then .cost += $ev.costUsd
              else .uncosted_events += 1 end
          elif $ev.type == "tool_call" then
            .tool_calls += 1
            | if $ev.success == false then .tool_failures += 1 else . end
          elif $ev.type == "agent_end" then
            .runs += 1
            | if $ev.success == false then .errors += 1 else . end
          else . end
      elif $t >= $p and $t < $s then
        if $ev.type == "session_start" then .prev_sessions += 1
        elif $ev.type == "model_usage" and ($ev.costUsd | type) == "number"
        then .prev_cost += $ev.costUsd else . end
      else . end
  )
| {window: {start: $ws, "end": $we,
            totals: {cost_usd: .cost, input_tokens, output_tokens,
                     sessions, model_calls, runs, errors,
                     tool_calls, tool_failures, uncosted_events}},
   previous: {cost_usd: .prev_cost, sessions: .prev_sessions}}
