// SPDX-License-Identifier: MIT
pragma solidity ^0.8.20;

// For tests only: emits whatever log it is asked to, to play a hostile or
// broken contract (forged transfers, logs whose data cannot be decoded).
contract Emitter {
    event TokenTransferred(
        address indexed from,
        address indexed to,
        uint256 value,
        string name,
        string symbol,
        uint8 decimals
    );

    function fake(
        address from,
        address to,
        uint256 value,
        string calldata name,
        string calldata symbol,
        uint8 decimals
    ) external {
        emit TokenTransferred(from, to, value, name, symbol, decimals);
    }

    // A log with three topics and any data, well-formed or not.
    function raw3(bytes32 t0, bytes32 t1, bytes32 t2, bytes calldata data) external {
        assembly {
            let p := mload(0x40)
            calldatacopy(p, data.offset, data.length)
            log3(p, data.length, t0, t1, t2)
        }
    }
}
