"""Tests of engine.oauth: connecting accounts and keeping tokens alive, on the mock platform."""
