#!/usr/bin/env python3
"""Headless-browser test of the demo page served by `switchboard serve`.

Two Chromium sessions log in with tokens, join one room, and exchange a message; then both
reconnect to a server with `encryption: required` and exchange a message that the page
decrypts with WebCrypto (ECDH P-256 + HKDF-SHA256 + AES-256-GCM).

Usage: demo_test.py SWITCHBOARD_BINARY   (Tests/Browser/run installs what this needs)
"""
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import TimeoutException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

ROOM = "public-browser"
WAIT = 10


class Failure(Exception):
    pass


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Gateway:
    """`switchboard serve` with a tokens file on a free port."""

    def __init__(self, binary, workdir, encryption):
        self.port = free_port()
        tokens = os.path.join(workdir, "tokens.yaml")
        with open(tokens, "w") as f:
            f.write("alice-token: alice\nbob-token: bob\n")
        config = os.path.join(workdir, f"serve-{encryption}.yaml")
        with open(config, "w") as f:
            f.write(f"listen:\n  port: {self.port}\nauth:\n  tokens_file: {tokens}\nencryption: {encryption}\n")
        self.log = open(os.path.join(workdir, f"serve-{encryption}.log"), "w")
        self.process = subprocess.Popen([binary, "serve", "--config", config], stdout=self.log, stderr=subprocess.STDOUT)
        self.url = f"http://127.0.0.1:{self.port}/"
        deadline = time.monotonic() + 30
        while True:
            if self.process.poll() is not None:
                raise Failure(f"switchboard serve exited with {self.process.returncode}; see {self.log.name}")
            try:
                with urllib.request.urlopen(self.url + "healthz", timeout=1) as answer:
                    if answer.status == 200:
                        return
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise Failure(f"switchboard serve did not become healthy on port {self.port}")
            time.sleep(0.1)  # polling the health endpoint, not synchronizing the test

    def stop(self):
        if self.process.poll() is None:
            self.process.terminate()
            try:
                code = self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                raise Failure("switchboard serve did not stop within 10 s of SIGTERM")
            if code != 0:
                raise Failure(f"switchboard serve exited with {code} after SIGTERM")
        self.log.close()


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = os.environ.get("CHROMIUM", "/usr/bin/chromium")
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1200,900"):
        options.add_argument(flag)
    service = Service(executable_path=os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver"))
    return webdriver.Chrome(service=service, options=options)


def log_items(driver):
    return driver.execute_script(
        "return [...document.querySelectorAll('#log li')].map(li => ({content: li.textContent, ...li.dataset}))")


def connect(driver, gateway, token, encrypted):
    driver.get(gateway.url)
    token_field = driver.find_element(By.ID, "token")
    token_field.clear()
    token_field.send_keys(token)
    box = driver.find_element(By.ID, "encrypt")
    if box.is_selected() != encrypted:
        box.click()
    driver.find_element(By.ID, "connect").click()
    want = "connected (encrypted)" if encrypted else "connected"
    try:
        WebDriverWait(driver, WAIT).until(EC.text_to_be_present_in_element((By.ID, "status"), want))
    except TimeoutException:
        raise Failure(f"{token}: status is '{driver.find_element(By.ID, 'status').text}', expected '{want}'; "
                      f"log: {log_items(driver)}")
    status = driver.find_element(By.ID, "status").text
    if status != want:
        raise Failure(f"{token}: status '{status}', expected '{want}'")
    payload = json.loads(driver.find_element(By.ID, "connected").text)
    user = token.split("-")[0]
    if payload.get("userId") != user or not payload.get("id"):
        raise Failure(f"{token}: connected payload {payload} lacks userId {user}")
    if encrypted and not (payload.get("serverPublicKey") and payload.get("salt")):
        raise Failure(f"{token}: encrypted connected payload {payload} lacks serverPublicKey/salt")
    return payload


def join(driver, room):
    field = driver.find_element(By.ID, "room")
    field.clear()
    field.send_keys(room)
    driver.find_element(By.ID, "join").click()


def exchange(sender, receiver, text, encrypted):
    """Sends `text` until the receiver shows it: joins go through validateRoomFn asynchronously,
    so a message sent right after `join` may meet 'Not in room' and is sent again."""
    field = sender.find_element(By.ID, "text")
    for attempt in range(10):
        field.clear()
        field.send_keys(text)
        sender.find_element(By.ID, "send").click()

        def shown(_):
            return [item for item in log_items(receiver) if item.get("text") == text and item.get("event") == "message"]
        try:
            items = WebDriverWait(receiver, 2).until(shown)
        except TimeoutException:
            continue
        item = items[0]
        if encrypted and item.get("encrypted") != "1":
            raise Failure(f"'{text}' arrived without encryption: {item}")
        if not encrypted and item.get("encrypted") != "0":
            raise Failure(f"'{text}' arrived marked encrypted on a plain connection: {item}")
        return item
    raise Failure(f"the receiver never showed '{text}'; sender log: {log_items(sender)}; receiver log: {log_items(receiver)}")


def scenario(binary, workdir, encryption):
    gateway = Gateway(binary, workdir, encryption)
    encrypted = encryption == "required"
    drivers = []
    try:
        alice, bob = browser(), browser()
        drivers = [alice, bob]
        connect(alice, gateway, "alice-token", encrypted)
        connect(bob, gateway, "bob-token", encrypted)
        join(alice, ROOM)
        join(bob, ROOM)
        text = "secret from alice" if encrypted else "hello from alice"
        item = exchange(alice, bob, text, encrypted)
        if f"[{ROOM}] alice: {text}" not in item.get("content", ""):
            raise Failure(f"the entry does not name the room and the sender: {item}")
        print(f"ok: {encryption}: bob received '{text}'" + (" (decrypted in the page)" if encrypted else ""))
    finally:
        for driver in drivers:
            try:
                driver.quit()
            except WebDriverException:
                pass
        gateway.stop()


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    binary = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="switchboard-browser-") as workdir:
        try:
            scenario(binary, workdir, "off")
            scenario(binary, workdir, "required")
        except Failure as failure:
            print(f"FAIL: {failure}", file=sys.stderr)
            for name in sorted(os.listdir(workdir)):
                if name.endswith(".log"):
                    with open(os.path.join(workdir, name)) as f:
                        print(f"--- {name}\n{f.read()}", file=sys.stderr)
            return 1
        except WebDriverException as error:
            print(f"FAIL: the browser could not run: {error.msg}", file=sys.stderr)
            return 1
    print("browser test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
