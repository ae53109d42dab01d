// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

import "./DemoToken.sol";

/// Creates DemoTokens; the whole initial supply goes to the caller.
contract DemoTokenFactory {
    event ERC20NewToken(
        address indexed token,
        string name,
        string symbol,
        address indexed creator,
        uint256 initialSupply
    );

    function erc20NewToken(
        string calldata name,
        string calldata symbol,
        uint256 initialSupply
    ) external returns (address) {
        DemoToken token = new DemoToken(name, symbol, initialSupply, msg.sender);
        emit ERC20NewToken(address(token), name, symbol, msg.sender, initialSupply);
        return address(token);
    }
}
