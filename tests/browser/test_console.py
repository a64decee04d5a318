"""The web console in a real browser (Debian's Chromium through Playwright), against the real app.

Scenarios of issue 7: a regulator filters the trail and opens a proof bundle; a department approves a
pending share request and the grant appears; the language switch works both ways; an enterprise
downloads a proof bundle that checks out; a department is refused the regulator's dashboard. Each
scenario leaves screenshots in the artifacts directory (see conftest.py).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from ledger.log.bundle import check_proof
from ledger.types import RequestStatus
from tests.browser.world import CONTRACT, NAMES, ConsoleWorld, login

pytestmark = pytest.mark.browser


def shot(page: Page, artifacts: Path, name: str) -> Path:
    path = artifacts / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def charts_drawn(page: Page) -> None:
    """ECharts drew every chart of the page (a canvas inside each chart element)."""
    expect(page.locator("body[data-charts-ready='1']")).to_have_count(1)
    for chart in page.locator("[data-chart]").all():
        expect(chart.locator("canvas")).to_have_count(1)


def test_regulator_filters_the_trail_and_opens_a_bundle(
    page: Page, console_world: ConsoleWorld, artifacts: Path
) -> None:
    login(page, console_world, "regulator")
    expect(page).to_have_url(re.compile(r"/console/dashboard$"))
    expect(page.get_by_role("heading", name="数据安全监管总览")).to_be_visible()
    expect(page.get_by_test_id("checkpoint")).to_contain_text("0x")
    charts_drawn(page)
    burst = page.get_by_test_id("alerts").locator("tr", has_text="短时多次被拒")
    expect(burst).to_contain_text(NAMES["enterprise"])
    expect(burst.locator(".sev")).to_have_text(re.compile("高|中|低"))
    page.get_by_test_id("verify-button").click()  # the integrity audit, through htmx
    expect(page.get_by_test_id("verify-intact")).to_contain_text("完整")
    shot(page, artifacts, "01-regulator-dashboard")

    page.get_by_role("link", name="追溯查询").click()
    expect(page.get_by_test_id("trail-table")).to_be_visible()
    page.get_by_test_id("filter-party").select_option(label=NAMES["civil"])
    page.get_by_test_id("filter-kind").select_option(value="denied")
    page.get_by_test_id("filter-submit").click()
    expect(page).to_have_url(re.compile(r"kind=denied"))
    rows = page.get_by_test_id("trail-table").locator("tbody tr")
    assert rows.count() > 0
    for row in rows.all():  # every row is a refusal involving 民政局
        expect(row).to_contain_text("拒绝访问")
        expect(row).to_contain_text(NAMES["civil"])
    expect(page.get_by_test_id("trail-csv")).to_have_attribute(
        "href", re.compile(r"trail\.csv\?.*kind=denied")
    )
    shot(page, artifacts, "02-regulator-trail-denied")

    first_index = rows.first.locator("td").first.inner_text().strip()
    rows.first.get_by_test_id("bundle-link").click()
    expect(page).to_have_url(re.compile(rf"/console/bundles/{first_index}$"))
    expect(page.get_by_test_id("bundle-proof")).to_contain_text(first_index)
    bundle = json.loads(page.get_by_test_id("bundle-json").inner_text())
    assert bundle["version"] == 1 and bundle["leaf_index"] == int(first_index)
    assert bundle["entry"]["kind"] == "denied"
    assert console_world.ids["civil"] in (bundle["entry"]["accessor"], bundle["entry"]["provider"])
    check_proof(bundle)  # the inclusion proof leads to the anchored root
    shot(page, artifacts, "03-regulator-bundle")


def test_department_approves_a_pending_request_and_the_grant_appears(
    page: Page, console_world: ConsoleWorld, artifacts: Path
) -> None:
    login(page, console_world, "police")
    expect(page).to_have_url(re.compile(r"/console/workbench$"))
    card = page.locator(f"[data-request='{console_world.pending_request}']")
    expect(card).to_contain_text(NAMES["statistics"])
    expect(card.get_by_test_id("countdown")).to_have_text(re.compile(r"剩余 \d+ 个工作日|今日到期"))
    shot(page, artifacts, "04-department-workbench-pending")

    card.get_by_test_id("reason").fill("符合共享条件，仅限统计比对使用")
    card.get_by_test_id("approve").click()
    expect(page.get_by_test_id("flash")).to_contain_text("已批准")
    row = console_world.ledger.sharing.get(
        console_world.ledger.parties.get(console_world.ids["police"]), console_world.pending_request
    )
    assert row.status is RequestStatus.GRANTED and row.grant_id is not None and row.reason
    expect(page.get_by_test_id("flash")).to_contain_text(row.grant_id)
    expect(page.locator(f"[data-request='{console_world.pending_request}']")).to_have_count(0)
    granted = page.get_by_test_id("grants-given").locator(f"tr[data-grant='{row.grant_id}']")
    expect(granted).to_contain_text(NAMES["statistics"])
    expect(granted).to_contain_text("有效")
    shot(page, artifacts, "05-department-workbench-granted")


def test_language_switch_zh_en_zh(page: Page, console_world: ConsoleWorld, artifacts: Path) -> None:
    login(page, console_world, "regulator")
    nav = page.locator("nav.menu")
    expect(nav).to_contain_text("追溯查询")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")

    page.get_by_test_id("lang-switch").click()
    expect(nav).to_contain_text("Trail")
    expect(nav).not_to_contain_text("追溯查询")
    expect(page.get_by_role("heading", name="Data-security supervision")).to_be_visible()
    expect(page.locator("html")).to_have_attribute("lang", "en")
    charts_drawn(page)
    page.get_by_role("link", name="Trail").click()  # the choice is remembered across pages
    expect(page.get_by_test_id("filter-submit")).to_have_text("Search")
    shot(page, artifacts, "06-language-english")

    page.get_by_test_id("lang-switch").click()
    expect(nav).to_contain_text("追溯查询")
    expect(page.get_by_test_id("filter-submit")).to_have_text("查询")
    expect(page.locator("html")).to_have_attribute("lang", "zh-CN")


def test_enterprise_downloads_a_proof_bundle(
    page: Page, console_world: ConsoleWorld, artifacts: Path
) -> None:
    login(page, console_world, "enterprise")
    expect(page).to_have_url(re.compile(r"/console/portal$"))
    expect(page.get_by_test_id("open-contracts")).to_be_visible()
    table = page.get_by_test_id("accesses")
    expect(table).to_contain_text(CONTRACT[:10])
    index = console_world.enterprise_accesses[-1]
    shot(page, artifacts, "07-enterprise-portal")

    with page.expect_download() as info:
        page.get_by_test_id(f"download-{index}").click()
    download = info.value
    assert download.suggested_filename == f"sharetrail-bundle-{index}.json"
    saved = artifacts / download.suggested_filename
    download.save_as(saved)
    bundle = json.loads(saved.read_text(encoding="utf-8"))
    assert bundle["version"] == 1 and bundle["leaf_index"] == index
    assert bundle["entry"]["accessor"] == console_world.ids["enterprise"]
    assert bundle["entry"]["contract"] == CONTRACT
    assert bundle["anchor"]["tx_hash"].startswith("0x")
    check_proof(bundle)


def test_department_gets_403_on_the_regulator_dashboard(
    page: Page, console_world: ConsoleWorld, artifacts: Path
) -> None:
    login(page, console_world, "police")
    response = page.goto(f"{console_world.url}/console/dashboard")
    assert response is not None and response.status == 403
    assert response.headers["x-error-code"] == "forbidden_role"
    expect(page.get_by_role("heading", name=re.compile("403"))).to_contain_text("无权访问")
    expect(page.locator("nav.menu")).not_to_contain_text("监管总览")  # not offered in the menu either
    shot(page, artifacts, "08-department-403")


def test_regulator_sees_lineage_and_scorecards(
    page: Page, console_world: ConsoleWorld, artifacts: Path
) -> None:
    login(page, console_world, "regulator")
    page.get_by_role("link", name="流通路径").click()
    page.get_by_test_id("lineage-resource").select_option(label="GY-GA-101 · 常住人口基础信息")
    page.get_by_role("button", name="查看").click()
    charts_drawn(page)
    edges = page.locator("table.data")
    expect(edges).to_contain_text(NAMES["civil"])  # holds a grant on it and accessed it
    expect(edges).to_contain_text(NAMES["enterprise"])  # accessed it under the open contract
    shot(page, artifacts, "09-regulator-lineage")

    page.get_by_role("link", name="部门考核").click()
    charts_drawn(page)
    cards = page.get_by_test_id("scorecards")
    expect(cards).to_contain_text(NAMES["police"])
    assert cards.locator("tbody tr").count() == 6  # the demo's departments
    shot(page, artifacts, "10-regulator-scorecards")
