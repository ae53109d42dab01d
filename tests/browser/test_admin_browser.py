"""The jobs admin driven through Chromium against a live server.

Needs Debian's chromium and chromium-driver (scripts/install-browser.sh) and
the selenium package. Without them the test is skipped on a developer's
machine and fails on CI (CI=true), where the set-up must have installed them.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth import get_user_model

from workers.claim import claim_next
from workers.execution import run_and_record
from workers.models import WorkerJob

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[2]
# The screenshot the docs show is rewritten only when asked for
# (UPDATE_SCREENSHOT=1), so a test run leaves the checkout as it was.
DOCS_SCREENSHOT = ROOT / "docs" / "admin-jobs.png"
# Paths from the environment, else found on PATH (Debian: /usr/bin).
CHROMIUM = os.environ.get("CHROMIUM") or shutil.which("chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER") or shutil.which("chromedriver")
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--window-size=1600,760",
)
WAIT_SECONDS = 15


def missing_browser() -> str | None:
    """What is missing to drive Chromium, or None."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "the selenium package (pip install -r requirements-dev.txt)"
    for name, path in (("chromium", CHROMIUM), ("chromedriver", CHROMEDRIVER)):
        if not path or not os.access(path, os.X_OK):
            return f"{path or name} (run scripts/install-browser.sh as root)"
    return None


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[Any]:
    missing = missing_browser()
    if missing:
        message = f"the browser test needs {missing}"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path / 'chromium-profile'}")
    driver = webdriver.Chrome(
        options=options, service=Service(executable_path=CHROMEDRIVER)
    )
    driver.implicitly_wait(WAIT_SECONDS)
    try:
        yield driver
    finally:
        driver.quit()


def listed_ids(driver: Any) -> list[str]:
    """The job ids in the change list shown, or [] while a page loads."""
    from selenium.common.exceptions import WebDriverException
    from selenium.webdriver.common.by import By

    try:
        cells = driver.find_elements(By.CSS_SELECTOR, "#result_list th.field-id")
        return [cell.text for cell in cells]
    except WebDriverException:  # the page changed under the lookup
        return []


def run_due_jobs() -> None:
    while (job := claim_next("browser-test")) is not None:
        run_and_record(job, "browser-test")


def test_retry_a_failed_job_from_the_admin(live_server, browser, tmp_path) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    get_user_model().objects.create_superuser("admin", "admin@example.com", "pw")
    succeeded = WorkerJob.objects.submit("test.record", {"n": 1})
    failed = WorkerJob.objects.submit("test.fail", {"n": 2}, tag="nightly-report")
    run_due_jobs()
    assert WorkerJob.objects.get(pk=failed.pk).status == "failed"

    browser.get(f"{live_server.url}/admin/login/?next=/admin/workers/workerjob/")
    browser.find_element(By.ID, "id_username").send_keys("admin")
    browser.find_element(By.ID, "id_password").send_keys("pw")
    browser.find_element(By.CSS_SELECTOR, "input[type=submit]").click()

    # The jobs list, then only the failed ones.
    WebDriverWait(browser, WAIT_SECONDS).until(ec.title_contains("worker job"))
    assert set(listed_ids(browser)) == {str(succeeded.pk), str(failed.pk)}
    filters = browser.find_element(By.ID, "changelist-filter")
    filters.find_element(By.LINK_TEXT, "Failed").click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda driver: listed_ids(driver) == [str(failed.pk)]
    )

    # The failed job's page shows what went wrong.
    browser.find_element(By.LINK_TEXT, str(failed.pk)).click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        ec.url_contains(f"/workerjob/{failed.pk}/")
    )
    assert (
        "failing on purpose, attempt 1"
        in browser.find_element(By.CSS_SELECTOR, ".field-result_json").text
    )
    browser.back()

    # Retry it with the admin action.
    WebDriverWait(browser, WAIT_SECONDS).until(ec.url_contains("status=failed"))
    browser.find_element(
        By.CSS_SELECTOR, f"input[name=_selected_action][value='{failed.pk}']"
    ).click()
    Select(browser.find_element(By.NAME, "action")).select_by_value("retry")
    browser.find_element(By.CSS_SELECTOR, "button[name=index]").click()
    message = WebDriverWait(browser, WAIT_SECONDS).until(
        ec.visibility_of_element_located((By.CSS_SELECTOR, "ul.messagelist li"))
    )
    retry = WorkerJob.objects.get(rescheduled_from_id=failed.pk)
    assert message.text == f"Retrying as job(s) #{retry.pk}."

    # The retry appears among the pending jobs, as attempt 2 of the tag.
    browser.find_element(By.ID, "changelist-filter").find_element(
        By.LINK_TEXT, "Pending"
    ).click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        lambda driver: listed_ids(driver) == [str(retry.pk)]
    )
    row = browser.find_element(By.CSS_SELECTOR, "#result_list tbody tr")
    assert row.find_element(By.CSS_SELECTOR, "th").text == str(retry.pk)
    assert row.find_element(By.CSS_SELECTOR, ".field-tag").text == "nightly-report"
    assert row.find_element(By.CSS_SELECTOR, ".field-attempt").text == "2"
    browser.find_element(By.LINK_TEXT, str(retry.pk)).click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        ec.url_contains(f"/workerjob/{retry.pk}/")
    )
    link = browser.find_element(By.CSS_SELECTOR, ".field-rescheduled_from_link a")
    assert link.text == f"job #{failed.pk}"

    # The whole list, for the docs.
    browser.get(f"{live_server.url}/admin/workers/workerjob/")
    browser.find_element(By.ID, "toggle-nav-sidebar").click()
    WebDriverWait(browser, WAIT_SECONDS).until(
        ec.invisibility_of_element_located((By.ID, "nav-sidebar"))
    )
    target = tmp_path / "admin-jobs.png"
    if os.environ.get("UPDATE_SCREENSHOT") == "1":
        target = DOCS_SCREENSHOT
    assert browser.save_screenshot(str(target))
    assert target.stat().st_size > 10_000
