"""The SFU with real aiortc peers in other processes, inside our own network namespaces (see conftest)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.media.conftest import MediaNetns


def _no_codecs(result: dict[str, Any]) -> None:
    codecs = result["codecs"]
    assert codecs["decoders"] == 0, "the SFU process created a decoder for forwarded media"
    assert codecs["encoders"] == 0, "the SFU process created an encoder for forwarded media"
    assert codecs["packers"] > 0 and codecs["packer_contexts_opened"] == 0


def test_host_to_20_light_subscribers_all_get_video_and_audio(media_netns: MediaNetns) -> None:
    result = media_netns.run_scenario("fanout")
    subs = result["subscribers"]
    assert len(subs) == 20 and len(result["sent_over_received"]) == 20
    assert result["publisher_fps"] >= 5 and result["publisher_audio_pps"] >= 20, result
    # exact, in the SFU process: every subscriber's senders took every frame the SFU received (±1 in flight)
    for ratio in result["sent_over_received"]:
        assert ratio["video"] >= 0.95 and ratio["audio"] >= 0.95, ratio
    # at the subscribers, by their own clocks: video frames and audio packets arrive, with no RTP sequence gaps;
    # loose rate bounds because on a loaded machine the report round trips skew the windows
    for sub in subs:
        assert sub["video_loss"] <= 0.01, sub
        assert sub["fps"] >= 0.7 * result["publisher_fps"], (sub, result["publisher_fps"])
        assert sub["audio_pps"] >= 0.7 * result["publisher_audio_pps"], (sub, result["publisher_audio_pps"])
    # ... and they got it through the forwarding loop's direct SRTP → sendto path (plain UDP pairs here)
    assert all(d["video"] > 0 and d["audio"] > 0 for d in result["direct_packets"]), result["direct_packets"]
    _no_codecs(result)


def test_floor_handover_both_ways(media_netns: MediaNetns) -> None:
    r = media_netns.run_scenario("floor")
    assert r["host_seen_s"] is not None, "probe never saw the host hall"
    assert r["site_frames_before_grant"] == 0, "a site without the floor must keep its uplink idle"
    assert r["site_seen_after_grant_s"] is not None and r["site_seen_after_grant_s"] < 3.0
    assert r["holder_sees_host_s"] is not None, "the floor holder must receive the host hall"
    assert r["site_frames_during_floor"] > 0
    assert r["host_seen_after_revoke_s"] is not None and r["host_seen_after_revoke_s"] < 3.0
    assert r["site_frames_after_revoke_delta"] == 0, "after revoke the site must stop sending"
    floor_msgs = [m for m in r["site_messages"] if m["type"] == "floor"]
    assert [m["granted"] for m in floor_msgs] == [True, False]
    _no_codecs(r)


def test_late_joiner_decodes_within_half_a_second(media_netns: MediaNetns) -> None:
    r = media_netns.run_scenario("late_joiner")
    assert r["first_frame_after_connect_s"] is not None
    assert r["first_frame_after_connect_s"] <= 0.5, r
    # the publisher's GOP is 3000 frames: only a forwarded PLI (a new keyframe) or the SFU's cached picture group
    # (when a keyframe was seen less than gop_cache_s ago) can give the late joiner a picture this fast
    assert (r["keyframe_requests_delta"] >= 1 and r["keyframes_delta"] >= 1) or r["started_from_cache"] == 1, r
    _no_codecs(r)


@pytest.mark.timeout(240)
def test_a_burst_of_joiners_starts_from_the_cached_keyframe_without_asking_the_publisher(
        media_netns: MediaNetns) -> None:
    r = media_netns.run_scenario("join_burst")
    # 7 sites joined after the first one's keyframe: none of them cost a keyframe request to the host hall; each
    # started from the cached picture group or, when the publisher's encoder sent a keyframe of its own meanwhile
    # (aiortc's does on some bitrate changes), from that one
    assert r["keyframe_requests_delta"] == 0, r
    assert 1 <= r["started_from_cache"] <= 7, r
    # and what they were started with decodes: the probe's first picture, the light sites' frames
    assert r["probe_first_frame_after_connect_s"] is not None and r["probe_first_frame_after_connect_s"] <= 0.5, r
    assert r["probe_decoded_video"] >= 5 and all(n > 0 for n in r["light_video_frames"]), r
    _no_codecs(r)


def test_subscriber_with_30_percent_loss_goes_audio_only_and_recovers(media_netns: MediaNetns) -> None:
    r = media_netns.run_scenario("lossy")
    assert r["audio_only_after_s"] is not None, "30 % loss did not switch the subscriber to audio only"
    assert r["video_decoded_during_audio_only"] <= 2
    # audio keeps flowing while video is off: the SFU sends every audio packet, and the probe (behind 30 % loss,
    # with aiortc's small audio jitter buffer) still decodes some
    assert r["audio_sent_over_received_during_audio_only"] >= 0.9, r
    assert r["audio_decoded_during_audio_only"] > 0, "audio must keep flowing while video is off"
    assert r["video_back_after_s"] is not None, "video did not come back after the loss stopped"
    assert r["video_fps_after_recovery"] >= 0.8 * r["publisher_fps"], r
    modes = [m["mode"] for m in r["messages"] if m["type"] == "video"]
    assert modes == ["audio-only", "full"]
    _no_codecs(r)


def test_cascade_primary_to_worker_sfu_forwards_and_relays_keyframe_requests(media_netns: MediaNetns) -> None:
    r = media_netns.run_scenario("cascade")
    assert len(r["fps"]) == 6 and min(r["fps"]) >= 0.9 * r["publisher_fps"], r
    assert r["first_frame_after_connect_s"] is not None and r["first_frame_after_connect_s"] <= 0.5, r
    assert r["primary_keyframe_requests"] >= 1  # the late joiner's PLI crossed the relay up to the publisher
    assert r["worker_packers_opened"] == 0
    _no_codecs(r)


def test_subscribers_on_a_worker_process_get_the_primary_publisher(media_netns: MediaNetns) -> None:
    r = media_netns.run_scenario("worker_process")
    assert len(r["fps"]) == 4 and min(r["fps"]) >= 0.9 * r["publisher_fps"], r
    assert sorted(r["worker_peers"]) == ["upstream", "w-1", "w-2", "w-3", "w-4"]
    assert sorted(r["primary_peers"]) == ["host", "relay-w1"]  # the sites are not on the primary
    _no_codecs(r)
