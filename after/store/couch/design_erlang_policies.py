"""The optional controls of a task (``repeat``, ``retry``, ``missed``, ``grace``) in the Erlang
``validate_doc_update``: functions appended to the module of ``after.store.couch.design_erlang``, whose
helpers (``refuse``, ``field``, ``has``, ``repr``, ``type_name``, ``strip``, ``groups``, ``pattern``,
``parse_date``, ``parse_duration``) they use. Rule for rule and reason for reason
``after.core.recurrence``, ``after.core.cron``, ``after.core.retry`` and ``after.core.missed``.
"""

from __future__ import annotations

import re

from after.core.cron import FIELDS, MACROS, MONTH_DAYS, named
from after.core.missed import MISSED_REASON, Missed
from after.core.recurrence import CRON_KEYS, MIN_PERIOD, zone_names
from after.core.recurrence import SHAPE as REPEAT_SHAPE
from after.core.retry import MAX_FACTOR, MAX_RETRIES, RETRY_KEYS
from after.core.retry import SHAPE as RETRY_SHAPE

POLICIES_TEMPLATE = r"""
%% after.core.task.task_policies: repeat, retry, missed, grace, in this order (null: absent).
check_policies(Doc) ->
    present(<<"repeat">>, Doc) andalso check_repeat(field(<<"repeat">>, Doc, null)),
    present(<<"retry">>, Doc) andalso check_retry(field(<<"retry">>, Doc, null)),
    present(<<"missed">>, Doc) andalso not lists:member(field(<<"missed">>, Doc, null), @missed@) andalso
        refuse(@missed_reason@),
    present(<<"grace">>, Doc) andalso parse_duration(field(<<"grace">>, Doc, null), <<"grace">>) =/= ok,
    ok.

present(Key, Doc) ->
    field(Key, Doc, null) =/= null.

only_keys({Props}, Keys) ->
    lists:all(fun({Key, _}) -> lists:member(Key, Keys) end, Props).

%% after.core.recurrence.parse_repeat
check_repeat(Value) when is_binary(Value) ->
    check_interval(Value);
check_repeat({Props} = Value) when is_list(Props) ->
    only_keys(Value, @cron_keys@) orelse refuse(<<"repeat must have only the fields cron and tz">>),
    check_cron(field(<<"cron">>, Value, null)),
    case field(<<"tz">>, Value, null) of
        null -> ok;
        Zone when is_binary(Zone) ->
            lists:member(Zone, @zones@) orelse
                refuse([<<"repeat.tz ">>, repr(Zone),
                        <<" is not a time zone of the tz database (like \"Europe/Lisbon\")">>]),
            ok;
        Zone ->
            refuse([<<"repeat.tz must be a time zone name like \"Europe/Lisbon\", not ">>, type_name(Zone)])
    end;
check_repeat(Value) ->
    refuse([@repeat_shape@, <<", not ">>, type_name(Value)]).

check_interval(Text) ->
    case groups(Text, interval, 3) of
        nomatch ->
            refuse([<<"repeat ">>, repr(Text),
                    <<" is not an ISO 8601 repeating interval like \"R5/2026-12-01T08:00:00Z/PT1H\"">>]);
        [Count, Start, Period] ->
            Count =/= <<>> andalso binary_to_integer(Count) =:= 0 andalso
                refuse([<<"repeat ">>, repr(Text), <<" has no occurrences (R0)">>]),
            parse_date(Start),
            parse_duration(Period, <<"repeat period">>) < @min_period@ andalso
                refuse(<<"repeat period must be at least 1 second (PT1S)">>),
            ok
    end.

%% after.core.cron.check_cron
check_cron(Value) when is_binary(Value) ->
    Text = strip(Value),
    Expression = case lists:keyfind(string:lowercase(Text), 1, @macros@) of
                     {_, Macro} -> Macro;
                     false -> Text
                 end,
    Fields = re:split(Expression, pattern(separator), [{return, binary}]),
    length(Fields) =:= 5 orelse
        refuse([<<"repeat.cron ">>, repr(Value), <<" must have 5 fields (minute hour day-of-month month ">>,
                <<"day-of-week) or be one of @hourly @daily @weekly @monthly @yearly">>]),
    [_, _, Days, Months, _] =
        [cron_field(Field, Spec, Value) || {Field, Spec} <- lists:zip(Fields, @cron_fields@)],
    FirstDay = lists:min(Days),
    lists:last(Fields) =:= <<"*">> andalso FirstDay > lists:max([lists:nth(M, @month_days@) || M <- Months])
        andalso refuse([<<"repeat.cron ">>, repr(Value), <<" never runs: no month it names has day ">>,
                        integer_to_binary(FirstDay)]),
    ok;
check_cron(Value) ->
    refuse([<<"repeat.cron must be a string like \"0 8 * * 1-5\", not ">>, type_name(Value)]).

cron_field(Text, {Name, Low, High, Names, First, Named}, Value) ->
    try
        Items = binary:split(Text, <<",">>, [global]),
        lists:append([cron_item(Item, Low, High, Names, First) || Item <- Items])
    catch throw:bad_cron_item ->
        refuse([<<"repeat.cron ">>, repr(Value), <<": the ">>, Name, <<" field ">>, repr(Text),
                <<" is not valid (values ">>, integer_to_binary(Low), <<"-">>, integer_to_binary(High), Named,
                <<", ranges a-b, steps */n or a-b/n)">>])
    end.

cron_item(Item, Low, High, Names, First) ->
    [Base, Step] = case groups(Item, item, 2) of nomatch -> throw(bad_cron_item); Found -> Found end,
    Parts = case Base of
                <<"*">> -> [Low, High];
                _ -> [cron_value(Part, Names, First) || Part <- binary:split(Base, <<"-">>)]
            end,
    Step =/= <<>> andalso length(Parts) =:= 1 andalso throw(bad_cron_item),
    By = case Step of <<>> -> 1; _ -> binary_to_integer(Step) end,
    {From, To} = {hd(Parts), lists:last(Parts)},
    (is_integer(From) andalso is_integer(To) andalso Low =< From andalso From =< To andalso To =< High
     andalso By >= 1 andalso By =< High) orelse throw(bad_cron_item),
    lists:seq(From, To, By).

cron_value(Text, Names, First) ->
    case re:run(Text, pattern(digits), [{capture, none}]) of
        match -> binary_to_integer(Text);
        nomatch ->
            Lower = string:lowercase(Text),
            Indexed = lists:zip(lists:seq(0, length(Names) - 1), Names),
            case [Index || {Index, Name} <- Indexed, Name =:= Lower] of
                [Index] -> Index + First;
                [] -> none
            end
    end.

%% after.core.retry.parse_retry
check_retry({Props} = Value) when is_list(Props) ->
    only_keys(Value, @retry_keys@) orelse
        refuse(<<"retry must have only the fields retries, delay, factor, max_delay and jitter">>),
    is_whole(field(<<"retries">>, Value, null), @max_retries@) orelse
        refuse(<<"retry.retries must be a whole number from 0 to 100">>),
    has(<<"delay">>, Value) andalso parse_duration(field(<<"delay">>, Value, null), <<"retry.delay">>) =/= ok,
    Factor = field(<<"factor">>, Value, 2),
    (is_number(Factor) andalso Factor >= 1 andalso Factor =< @max_factor@) orelse
        refuse(<<"retry.factor must be a number from 1 to 100">>),
    [parse_duration(field(Key, Value, null), <<"retry.", Key/binary>>)
     || Key <- [<<"max_delay">>, <<"jitter">>], has(Key, Value)],
    ok;
check_retry(Value) ->
    is_whole(Value, @max_retries@) orelse
        refuse([@retry_shape@, case is_number(Value) of
                                   true -> <<>>;
                                   false -> [<<", not ">>, type_name(Value)]
                               end]),
    ok.

is_whole(Value, High) ->
    is_number(Value) andalso Value >= 0 andalso Value =< High andalso
        (is_integer(Value) orelse Value == math:floor(Value)).
"""

PLACEHOLDER_RE = re.compile(r"@([a-z_]+)@")


def erl_text(text: str) -> str:
    """Any text as an Erlang binary literal (UTF-8), for the reasons and names in the tables."""
    return "<<\"" + text.replace("\\", "\\\\").replace('"', '\\"') + "\"/utf8>>"


def erl_texts(texts: list[str]) -> str:
    return "[" + ", ".join(erl_text(text) for text in texts) + "]"


def policies_source() -> str:
    """The functions above with the core's tables filled in (macros hold ``@``: filled last, once)."""
    values = {
        "missed": erl_texts(sorted(Missed)), "missed_reason": erl_text(MISSED_REASON),
        "cron_keys": erl_texts(list(CRON_KEYS)), "retry_keys": erl_texts(list(RETRY_KEYS)),
        "zones": erl_texts(sorted(zone_names())), "repeat_shape": erl_text(REPEAT_SHAPE),
        "retry_shape": erl_text(RETRY_SHAPE), "min_period": repr(float(MIN_PERIOD)),
        "max_retries": str(MAX_RETRIES), "max_factor": str(MAX_FACTOR),
        "month_days": "[" + ", ".join(str(days) for days in MONTH_DAYS) + "]",
        "macros": "[" + ", ".join(f"{{{erl_text(key)}, {erl_text(value)}}}"
                                  for key, value in MACROS.items()) + "]",
        "cron_fields": "[" + ", ".join(
            f"{{{erl_text(spec.name)}, {spec.low}, {spec.high}, {erl_texts(list(spec.names))}, "
            f"{spec.first_name}, {erl_text(named(spec))}}}" for spec in FIELDS) + "]",
    }
    wanted = set(PLACEHOLDER_RE.findall(POLICIES_TEMPLATE))
    if wanted != set(values):
        raise ValueError(f"placeholders of the Erlang policies: {sorted(wanted ^ set(values))}")
    return PLACEHOLDER_RE.sub(lambda match: values.get(match.group(1), match.group(0)), POLICIES_TEMPLATE)
